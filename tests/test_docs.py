"""Every Python block in the docs runs (blocks starting `# not run` excepted)."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks():
    for page in sorted(DOCS.glob("*.md")):
        for number, match in enumerate(BLOCK.finditer(page.read_text()), 1):
            code = match.group(1)
            if not code.startswith("# not run"):
                yield pytest.param(code, id=f"{page.stem}-{number}")


@pytest.mark.parametrize("code", list(python_blocks()))
def test_docs_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"})
