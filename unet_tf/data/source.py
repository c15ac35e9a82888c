"""What every data source returns: raw examples plus what they mean, and how a source's
classes are matched to a model's (by name)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from unet_tf.config import IGNORE_LABEL

logger = logging.getLogger("unet_tf")


@dataclass
class Source:
    """Raw examples of one split of a data source.

    Attributes:
        examples: (uint8 image [H, W, C], int32 mask [H, W, 1]) with class indices, and
            ``IGNORE_LABEL`` (255) where a pixel has no label; sizes may vary.
        class_names: names of the classes, in index order.
        channels: image channels (1 grayscale, 3 RGB).
        size: number of examples.
        description: one line for logs, e.g. "oxford-pets:DIR split trainval (240 of 300)".
    """

    examples: tf.data.Dataset
    class_names: tuple[str, ...]
    channels: int
    size: int
    description: str


def class_lookup(
    data_names: Sequence[str], model_names: Sequence[str], data: str, model: str
) -> np.ndarray | None:
    """Match a data source's classes to a model's by name.

    Scores compare classes by index, so data whose classes are the model's in another order
    are remapped (the table below), and data of other classes are refused.

    Args:
        data_names: the source's class names, in index order.
        model_names: the model's class names, in index order.
        data: the data, for messages (e.g. ``Source.description``).
        model: the model, for messages (its path).

    Returns:
        None when the names are the model's in the same order; else a table [256] taking
        the data's class index to the model's (``IGNORE_LABEL`` stays), for
        :func:`remap_labels`.

    Raises:
        ValueError: the data's classes are not the model's (another count or other names).

    Examples:
        >>> class_lookup(["a", "b"], ["a", "b"], "data", "model") is None
        True
        >>> class_lookup(["b", "a"], ["a", "b"], "data", "model")[:2]
        array([1, 0], dtype=int32)
    """
    data_names, model_names = tuple(data_names), tuple(model_names)
    if data_names == model_names:
        return None
    if len(set(data_names)) != len(data_names) or set(data_names) != set(model_names):
        raise ValueError(
            f"{data} has classes {list(data_names)}, but the model {model} was trained on "
            f"{list(model_names)}; give data of the model's classes (in any order; folder "
            f"data: --classes {','.join(model_names)} with --mask-values in that order)"
        )
    logger.info("%s: classes %s matched by name to the model's %s", data, list(data_names),
                list(model_names))
    lookup = np.full(IGNORE_LABEL + 1, IGNORE_LABEL, np.int32)
    lookup[: len(data_names)] = [model_names.index(name) for name in data_names]
    return lookup


def remap_labels(labels: np.ndarray, lookup: np.ndarray | None) -> np.ndarray:
    """Class indices of the data as the model's (see :func:`class_lookup`; None: as they are).

    Examples:
        >>> remap_labels(np.array([0, 1, 255]), class_lookup(["b", "a"], ["a", "b"], "d", "m"))
        array([  1,   0, 255], dtype=int32)
    """
    if lookup is None:
        return labels
    return lookup[np.clip(labels, 0, IGNORE_LABEL)]
