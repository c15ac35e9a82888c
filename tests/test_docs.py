"""The documentation: a short README whose links hold, and a MkDocs site that builds strictly.

The README is the front page (and the package's long description), so it stays short and
every relative link in it must reach a file of the repository. The site (``mkdocs.yml``,
``docs/``) is built with ``--strict``: a broken link or anchor, a page missing from the
navigation or a docstring the API reference cannot read fails the build.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 250
# what `mkdocs build` needs for mkdocs.yml: distribution -> module
DOCS_PACKAGES = {"mkdocs": "mkdocs", "mkdocs-material": "material",
                 "mkdocstrings[python]": "mkdocstrings_handlers.python"}

# [text](target) and ![alt](target); the target ends at the first space or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent of a dotted name is missing
        return False


def relative_links(markdown: str) -> list[str]:
    """The relative link targets of a Markdown text, code blocks left out, anchors dropped."""
    text = FENCE.sub("", markdown)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code: `[a](b)` there is not a link
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # https:, mailto:, ... and anchors within the README
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if path:
            targets.append(path)
    return targets


def test_relative_links_are_found():
    text = "[a](docs/a.md) ![b](docs/b.png) [c](https://x.org) [d](#e) `[f](g.md)` [h](i.md#j)"
    assert relative_links(text + "\n```\n[k](l.md)\n```\n") == ["docs/a.md", "docs/b.png", "i.md"]


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; keep it at {MAX_README_LINES} at most and move the "
        "rest into docs/ (the MkDocs site)"
    )


def test_readme_links_point_at_files():
    links = relative_links(README.read_text(encoding="utf-8"))
    assert links, "README.md links to no file of the repository; expected docs/ links at least"
    missing = [link for link in links if not (README.parent / link).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    missing = [name for name, module in DOCS_PACKAGES.items() if not importable(module)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed in this Python: pip install mkdocs "
                    "mkdocs-material 'mkdocstrings[python]' to build the documentation site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # no banner about MkDocs 2
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (exit {result.returncode}):\n"
        f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
    )
    assert (tmp_path / "index.html").exists()
