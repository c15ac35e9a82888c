"""What every data source returns: raw examples plus what they mean."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf


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
