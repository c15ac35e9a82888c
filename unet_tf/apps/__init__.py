"""Applications built on the predictor: background blur.

Examples:
    >>> from unet_tf.apps import blur_background  # doctest: +SKIP
"""

from unet_tf.apps.blur import blur_background, keep_indices, soft_mask

__all__ = ["blur_background", "keep_indices", "soft_mask"]
