"""Shipped models by name: a registry over the folders of ``saved_models/``.

A shipped model is a run directory (``model.keras`` + ``config.json``) whose config.json
carries a ``shipped`` entry (task, licence, dev score: what ``unet-tf models`` lists), next to
an int8 ``.tflite`` and a model card (``README.md``). They are trained by
``python -m benchmarks ship_models`` and committed with the repository, so a clone installed
with the README's command has them without training or network.

Standard library only: the command line lists models without importing TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_VAR = "UNET_TF_MODELS"  # another folder of shipped models (a copy of saved_models/)
REPOSITORY = "the unet_tf repository"  # where the models come from, for messages
CONFIG_FILE = "config.json"


def models_dir() -> Path:
    """The folder holding the shipped models: ``$UNET_TF_MODELS``, else the repository's
    ``saved_models/`` (beside the package in a clone installed with ``pip install -e .``)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path(__file__).resolve().parents[2] / "saved_models"


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: its name, folder and what its config.json says about it."""

    name: str
    path: Path
    config: dict[str, Any]

    @property
    def card(self) -> dict[str, Any]:
        return self.config.get("shipped", {})

    def summary(self) -> dict[str, Any]:
        """What ``unet-tf models`` prints: task, classes, input, dev score, licence."""
        card = self.card
        return {
            "name": self.name,
            "task": card.get("task", ""),
            "classes": list(self.config.get("class_names", [])),
            "input": "native pixel size" if (self.config.get("preprocessing") or {}).get(
                "resolution") == "native" else "x".join(map(str, self.config.get(
                    "input_size", []))),
            "score": card.get("score", ""),
            "licence": card.get("licence", ""),
            "path": str(self.path),
        }


def shipped_models(root: str | Path | None = None) -> list[ShippedModel]:
    """The shipped models in ``root`` (default :func:`models_dir`), sorted by name.

    Examples:
        >>> [m.name for m in shipped_models()]  # doctest: +SKIP
        ['membranes', 'nuclei', 'pets', 'street']
    """
    root = Path(root) if root is not None else models_dir()
    found = []
    for config_path in sorted(root.glob(f"*/{CONFIG_FILE}")) if root.is_dir() else []:
        try:
            config = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a user's broken run is not a shipped model
        if isinstance(config, dict) and "shipped" in config:
            found.append(ShippedModel(config_path.parent.name, config_path.parent, config))
    return found


def looks_like_name(text: str) -> bool:
    """A bare word (no folder separator, no file suffix) can name a shipped model."""
    return bool(text) and "/" not in text and os.sep not in text and "." not in text


def resolve(model: str | Path) -> Path:
    """The path of a model given by path or by shipped name (a path that exists wins).

    Raises:
        FileNotFoundError: neither a path that exists nor a shipped model's name; the
            message lists the shipped names, or says where they come from when none are found.

    Examples:
        >>> resolve("nuclei")  # doctest: +SKIP
        PosixPath('.../saved_models/nuclei')
    """
    path = Path(model)
    if path.exists() or not looks_like_name(str(model)):
        return path
    shipped = {m.name: m.path for m in shipped_models()}
    if str(model) in shipped:
        return shipped[str(model)]
    if shipped:
        raise FileNotFoundError(
            f"{model} does not exist and is not a shipped model; shipped models: "
            f"{', '.join(sorted(shipped))} (unet-tf models lists them)"
        )
    raise FileNotFoundError(f"{model} does not exist and is not a shipped model: {missing()}")


def missing() -> str:
    """Why no shipped model was found, and where they come from."""
    return (
        f"no shipped models in {models_dir()}. They come with a clone of {REPOSITORY} "
        f"(saved_models/, installed with pip install -e .); point ${ENV_VAR} at a copy of "
        "that folder otherwise"
    )
