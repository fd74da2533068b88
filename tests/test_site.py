"""The documentation site documents every public name and shows no missing
image. (`mkdocs build --strict` in scripts/test.sh checks the rest: links,
docstrings, navigation.)"""

import importlib
import pathlib
import re

import pytest

import safeloss
from safeloss import callbacks, layers, ops, testing

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.md"))
DIRECTIVE = re.compile(r"^::: *([\w.]+)\s*$", re.MULTILINE)
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")


def resolve(path):
    """The object a `::: dotted.path` directive documents."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(path)


def documented_paths():
    return [
        path
        for page in API_PAGES
        for path in DIRECTIVE.findall(page.read_text())
    ]


DOCUMENTED = {path: resolve(path) for path in documented_paths()}


def public_names():
    for module in (safeloss, ops, layers, callbacks, testing):
        for name in module.__all__:
            yield f"{module.__name__}.{name}"


def test_api_pages_exist():
    assert API_PAGES, f"no API pages under {DOCS / 'api'}"


@pytest.mark.parametrize("path", sorted(set(public_names())))
def test_public_name_is_documented(path):
    value = resolve(path)
    assert path in DOCUMENTED or any(value is known for known in DOCUMENTED.values()), (
        f"{path} appears in no `::: ...` directive of docs/api/*.md"
    )


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_images_exist(page):
    for target in IMAGE.findall(page.read_text()):
        if "://" not in target:
            assert (page.parent / target).is_file(), f"{page.name}: {target} is missing"


TESTS = DOCS.parent / "tests"
TEST_REFERENCE = re.compile(r"`(?:(tests/\w+\.py)::)?(test_\w+)`")


def test_numerics_page_names_real_tests():
    """Each `tests/file.py::test_name` (or a bare `test_name` after it, in
    the same file) on the numerics page is a test function there."""
    text = (DOCS / "numerics.md").read_text()
    current, checked = None, 0
    for line in text.splitlines():
        for file, name in TEST_REFERENCE.findall(line):
            current = file or current
            assert current, f"{name} is named before any test file"
            source = (TESTS.parent / current).read_text()
            assert re.search(rf"def {name}\(", source), f"{current} has no {name}"
            checked += 1
    assert checked > 20
