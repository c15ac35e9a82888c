"""Instance segmentation: U-Net 3-class targets, watershed post-processing, object metrics.

The semantic U-Net learns background / interior / boundary from instance label images
(:mod:`unet_tf.instances.targets`, data spec ``instances:DIR``); :func:`label` turns its
probabilities into objects with a seeded watershed, :func:`semantic_label` is the baseline
(connected components of the foreground), :func:`object_separator` picks one of them for a
model (refusing one of other classes), :func:`evaluate_instances` scores objects (DSB
2018 score, AJI) and :func:`write_outputs` writes one image's label image, overlay and
object table. NumPy, SciPy and scikit-image only: no TensorFlow import.

Examples:
    >>> import numpy as np
    >>> from unet_tf.instances import evaluate_instances, label
    >>> p = np.zeros((5, 9, 3), np.float32); p[..., 0] = 1
    >>> p[1:4, 1:8] = [0, 1, 0]; p[1:4, 4] = [0, 0, 1]  # two objects split by a boundary
    >>> int(label(p, min_size=1).max())
    2
"""

from unet_tf.instances.metrics import (
    THRESHOLDS,
    aggregated_jaccard,
    evaluate_instances,
    image_scores,
    overlaps,
)
from unet_tf.instances.pictures import comparison, overlay, unmatched, write_outputs
from unet_tf.instances.postprocess import (
    foreground_mask,
    is_instance_model,
    label,
    object_separator,
    object_table,
    semantic_label,
)
from unet_tf.instances.targets import (
    FOREGROUND_CLASS_NAMES,
    INSTANCE_CLASS_NAMES,
    boundary_target,
    foreground_target,
    make_target,
)

__all__ = [
    "FOREGROUND_CLASS_NAMES",
    "INSTANCE_CLASS_NAMES",
    "THRESHOLDS",
    "aggregated_jaccard",
    "boundary_target",
    "comparison",
    "evaluate_instances",
    "foreground_mask",
    "foreground_target",
    "image_scores",
    "is_instance_model",
    "label",
    "make_target",
    "object_separator",
    "object_table",
    "overlaps",
    "overlay",
    "semantic_label",
    "unmatched",
    "write_outputs",
]
