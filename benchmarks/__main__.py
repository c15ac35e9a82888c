"""``python -m benchmarks SUITE [ARGS]``: run one suite; with no SUITE, list them."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# command -> module; every module has main(argv) and records through benchmarks.harness
SUITES = {
    "recipe_pets": "recipe_pets",
    "recipe_isbi": "recipe_isbi",
    "recipe_camvid": "recipe_camvid",
    "recipe_dsb": "recipe_dsb",
    "recipe_figures": "recipe_figures",
    "keras_io_baseline": "keras_io_baseline",
    "ship_models": "ship_models",
    "finetune_bench": "finetune_bench",
    "speed": "speed",
    "export_bench": "export_bench",
    "web_bench": "web_bench",
    "large_image": "large_image",
    "wsi": "wsi",
    "tables": "tables",
    "import-legacy": "legacy",
}


def describe(module: str) -> str:
    """The first line of a suite's docstring, read without importing it (no TensorFlow)."""
    doc = ast.get_docstring(ast.parse((HERE / f"{module}.py").read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def usage() -> str:
    width = max(map(len, SUITES))
    lines = ["usage: python -m benchmarks SUITE [ARGS]   (from the repository root; "
             "SUITE --help for its options)", "", "suites:"]
    lines += [f"  {name:<{width}}  {describe(module)}" for name, module in SUITES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUITES:
        print(f"unknown suite {name!r}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{SUITES[name]}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
