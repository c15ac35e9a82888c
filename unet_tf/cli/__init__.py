"""The ``unet-tf`` command line: it parses arguments and calls the library, nothing more.

Parsing needs the standard library only, so ``unet-tf --help`` answers at once; TensorFlow
is imported by the command that needs it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from unet_tf.cli.parser import build_parser

__all__ = ["build_parser", "main"]

logger = logging.getLogger("unet_tf")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (callable in-process for tests).

    A user's mistake (a bad flag, a missing or unreadable file, data that fails its checks)
    prints one line naming the file or value and exits with 2; Ctrl-C exits with 130.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(message)s")
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        if args.command not in ("serve-web", "models"):  # these run TensorFlow: quietly
            from unet_tf.quiet import import_tensorflow

            import_tensorflow(verbose=args.verbose)
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"unet-tf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # training says what it kept and how to resume
        print(f"unet-tf {args.command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
