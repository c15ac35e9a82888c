"""Shipped models by name (``saved_models/``): list them, resolve a name, load one.

Examples:
    >>> import unet_tf
    >>> model, info = unet_tf.load_model("pets")  # doctest: +SKIP
    >>> info.class_names  # doctest: +SKIP
    ('pet', 'background', 'border')
"""

from __future__ import annotations

from pathlib import Path

from unet_tf.models.registry import ShippedModel, models_dir, resolve, shipped_models

__all__ = ["ShippedModel", "load_model", "models_dir", "resolve", "shipped_models"]


def load_model(model: str | Path):
    """Load a model by shipped name (``"nuclei"``, ``"pets"``, ...) or by path.

    Returns the Keras model (plain Keras layers, no optimizer state; ``compile`` it to
    fine-tune with ``model.fit``) and its :class:`unet_tf.RunInfo` (class names, input size,
    preprocessing, stored post-processing). It is what every ``unet-tf --model`` uses.

    Examples:
        >>> model, info = load_model("nuclei")  # doctest: +SKIP
    """
    from unet_tf.checkpoint import load_run

    return load_run(resolve(model))
