"""MkDocs hook: publishes benchmarks/plots/*.png beside docs/benchmarks.md.

docs/benchmarks.md includes benchmarks/README.md, which shows its plots with
links relative to itself (``plots/NAME.png``). The included text resolves
those links relative to docs/benchmarks.md, so each PNG is added to the site
as ``plots/NAME.png``, read from the repository, not copied into docs/. No
plots yet (or no folder) means nothing to add.
"""

import pathlib

from mkdocs.structure.files import File

PLOTS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "plots"


def on_files(files, config):
    for image in sorted(PLOTS.glob("*.png")):
        files.append(
            File.generated(config, f"plots/{image.name}", abs_src_path=str(image))
        )
    return files
