"""Import TensorFlow without its C++ start-up log lines.

TensorFlow 2.21 prints up to seven lines to the process's standard error before any of
ours, and one of them is an error on every machine without a GPU (``E0000 ...
cuda_platform.cc:52] failed call to cuInit``). They come from Abseil's C++ logging before
it is initialised, which ``TF_CPP_MIN_LOG_LEVEL`` does not reach in this release and no
environment variable configures. :func:`import_tensorflow` therefore points file
descriptor 2 at a temporary file while TensorFlow imports and looks for devices, then
writes back every line that is not such a log line, so real errors still show.

It only does this when the user has not chosen a level: with ``TF_CPP_MIN_LOG_LEVEL`` set
in the environment (or ``unet-tf --verbose``) TensorFlow prints what it prints. Without
it, it also sets ``TF_CPP_MIN_LOG_LEVEL=2`` (warnings and info hidden, errors shown) for
the rest of the run.

Examples:
    >>> tf = import_tensorflow()
    >>> tf.__name__
    'tensorflow'
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Abseil / TSL C++ log lines ("I0000 00:00:1796.. 3982 cudart_stub.cc:31] ...") and the
# one line Abseil adds before it is initialised.
CPP_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w./-]+:\d+\] |"
    r"WARNING: All log messages before absl::InitializeLog\(\) is called)"
)


def filter_log_lines(text: str) -> str:
    """``text`` without TensorFlow's C++ log lines.

    Examples:
        >>> filter_log_lines("I0000 00:00:17.5  3982 cudart_stub.cc:31] no GPU\\nreal\\n")
        'real\\n'
    """
    return "".join(line for line in text.splitlines(keepends=True)
                   if not CPP_LOG_LINE.match(line))


def import_tensorflow(verbose: bool = False) -> ModuleType:
    """TensorFlow, imported (and its devices listed) with the C++ start-up lines hidden.

    Args:
        verbose: show TensorFlow's lines as it prints them (``unet-tf --verbose``).

    Returns:
        The ``tensorflow`` module.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if verbose or LEVEL_VARIABLE in os.environ:
        import tensorflow as tf

        return tf
    os.environ[LEVEL_VARIABLE] = "2"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the cuInit attempt logs here
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = filter_log_lines(captured.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
    return tf
