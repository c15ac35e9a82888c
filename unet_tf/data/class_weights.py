"""Class balancing: per-class weights from label frequencies, as per-pixel sample weights.

Examples:
    >>> import numpy as np
    >>> balanced_class_weights(np.array([0.5, 0.25, 0.25])).round(2).tolist()
    [0.5, 1.0, 1.0]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from unet_tf.config import IGNORE_LABEL


def class_frequencies(dataset: tf.data.Dataset, num_classes: int) -> np.ndarray:
    """Fraction of labelled pixels of each class over a (mask-yielding) dataset."""
    counts = np.zeros(num_classes, np.float64)
    for _, mask in dataset:
        m = mask.numpy().ravel()
        counts += np.bincount(m[m != IGNORE_LABEL], minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1.0)


BALANCING_POWERS = {"balanced": 1.0, "sqrt_balanced": 0.5}


def balanced_class_weights(frequencies: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Median-frequency balancing (Eigen & Fergus 2015, as SegNet uses on CamVid).

    ``power=0.5`` ("sqrt_balanced") softens it: on CamVid full median-frequency weights
    (building ~0.2, pole ~9) let the rare classes take over the frequent ones.
    """
    present = frequencies > 0
    weights = np.ones_like(frequencies)
    weights[present] = (np.median(frequencies[present]) / frequencies[present]) ** power
    return weights


def with_class_weights(dataset: tf.data.Dataset, weights) -> tf.data.Dataset:
    """Add a per-pixel sample-weight map (0 on ignored pixels) to (image, mask) batches."""
    table = np.zeros(256, np.float32)
    table[: len(weights)] = weights
    table = tf.constant(table)
    return dataset.map(lambda x, y: (x, y, tf.gather(table, y[..., 0])))
