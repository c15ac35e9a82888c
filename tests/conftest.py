"""Shared test fixtures: where the real data lives, and quiet TensorFlow logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_dir(name: str) -> Path:
    """The path of a dataset under ../shared/data, or skip the test with a reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {path} is absent (it ships beside the repo in CI only)")
    return path

