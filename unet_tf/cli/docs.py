"""Write each command's ``--help`` into ``docs/cli.md``, so the page cannot go stale.

The page holds one block per command between ``<!-- cli:COMMAND -->`` and
``<!-- /cli:COMMAND -->``; :func:`render` replaces what is between them with the parser's
help at a fixed width (100 columns), whatever the terminal. ``tests/test_cli_docs.py`` fails
when the page differs from what this writes.

Usage (from the repository root)::

    python -m unet_tf.cli.docs           # rewrite docs/cli.md
    python -m unet_tf.cli.docs --check   # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from unet_tf.cli.parser import build_parser

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
WIDTH = 100  # columns of the help text on the page
BLOCK = re.compile(r"(<!-- cli:(?P<command>[\w-]+) -->\n).*?(<!-- /cli:(?P=command) -->)",
                   re.DOTALL)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """The ``unet-tf`` subcommands' parsers by name, in the order ``--help`` lists them."""
    [action] = [a for a in build_parser()._actions
                if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def help_text(command: str) -> str:
    """``unet-tf COMMAND --help`` as printed on a terminal ``WIDTH`` columns wide."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH + 2)  # argparse keeps 2 columns free
    try:
        return subcommands()[command].format_help().rstrip() + "\n"
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def render(page: str) -> str:
    """``page`` with every ``cli:COMMAND`` block replaced by that command's help.

    Raises:
        ValueError: a block names no command of ``unet-tf``.
    """
    known = subcommands()

    def block(match: re.Match) -> str:
        command = match["command"]
        if command not in known:
            raise ValueError(f"docs/cli.md: <!-- cli:{command} --> names no unet-tf command; "
                             f"commands: {', '.join(known)}")
        return f"{match[1]}```text\n{help_text(command)}```\n{match[3]}"

    return BLOCK.sub(block, page)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unet_tf.cli.docs", description=__doc__
                                     .splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the page is stale instead of rewriting it")
    parser.add_argument("--page", type=Path, default=PAGE, help="(default: docs/cli.md)")
    args = parser.parse_args(argv)
    page = args.page.read_text(encoding="utf-8")
    fresh = render(page)
    if fresh == page:
        return 0
    if args.check:
        print(f"{args.page} is stale: run python -m unet_tf.cli.docs", file=sys.stderr)
        return 1
    args.page.write_text(fresh, encoding="utf-8")
    print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
