"""Segmentation losses on logits that honour the ignore label, registered with Keras.

All losses return a per-pixel loss map [B, H, W], so Keras' per-pixel ``sample_weight``
(class balancing, the U-Net paper's border weight map, see
:func:`unet_tf.data.weightmap.with_weight_map`) multiplies them directly. Ignored pixels
contribute nothing and the mean is taken over labelled pixels only. The Dice term is one
value per image spread over its pixels, so a weight map scales it by the image's mean
weight rather than re-weighting pixels inside it.
"""

from __future__ import annotations

import keras
from keras import ops

from unet_tf.config import IGNORE_LABEL


def _labels_and_valid(y_true, num_classes: int, ignore_class: int | None):
    labels = ops.cast(ops.squeeze(y_true, -1) if len(y_true.shape) == 4 else y_true, "int32")
    if ignore_class is None:
        valid = ops.ones_like(labels, dtype="float32")
    else:
        valid = ops.cast(ops.not_equal(labels, ignore_class), "float32")
        labels = ops.where(ops.equal(labels, ignore_class), 0, labels)
    return labels, valid


def _mean_over_valid(pixel_loss, valid):
    """Scale so that Keras' mean over all pixels equals the mean over labelled pixels."""
    total = ops.cast(ops.size(valid), "float32")
    return pixel_loss * valid * total / ops.maximum(ops.sum(valid), 1.0)


@keras.saving.register_keras_serializable(package="unet_tf")
class SegmentationLoss(keras.losses.Loss):
    """Weighted sum of cross-entropy, focal and soft Dice losses, from logits.

    loss = ce_weight * CE + focal_weight * Focal(gamma) + dice_weight * (1 - soft Dice)

    Args:
        ce_weight: weight of sparse categorical cross-entropy.
        dice_weight: weight of the soft multi-class Dice loss (mean over classes present in
            the batch, computed per image and broadcast over its pixels).
        focal_weight: weight of the focal loss (Lin et al. 2017).
        focal_gamma: focusing parameter of the focal loss.
        ignore_class: label that contributes no loss (255 by default; None disables).

    Examples:
        >>> import numpy as np
        >>> loss = SegmentationLoss(dice_weight=1.0)
        >>> y = np.zeros((1, 4, 4, 1), "int32"); logits = np.zeros((1, 4, 4, 2), "float32")
        >>> round(float(loss(y, logits)), 3) > 0
        True
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 0.0,
        focal_weight: float = 0.0,
        focal_gamma: float = 2.0,
        ignore_class: int | None = IGNORE_LABEL,
        name: str = "segmentation_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.focal_weight = focal_weight
        self.focal_gamma = focal_gamma
        self.ignore_class = ignore_class

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        num_classes = y_pred.shape[-1]
        labels, valid = _labels_and_valid(y_true, num_classes, self.ignore_class)
        log_probs = ops.log_softmax(y_pred, axis=-1)
        onehot = ops.one_hot(labels, num_classes)
        ce = -ops.sum(onehot * log_probs, axis=-1)
        loss = ops.zeros_like(ce)
        if self.ce_weight:
            loss = loss + self.ce_weight * ce
        if self.focal_weight:
            p_true = ops.exp(-ce)
            loss = loss + self.focal_weight * ops.power(1.0 - p_true, self.focal_gamma) * ce
        if self.dice_weight:
            probs = ops.exp(log_probs) * valid[..., None]
            onehot_v = onehot * valid[..., None]
            inter = ops.sum(probs * onehot_v, axis=(1, 2))
            denom = ops.sum(probs, axis=(1, 2)) + ops.sum(onehot_v, axis=(1, 2))
            present = ops.cast(ops.sum(onehot_v, axis=(1, 2)) > 0, "float32")
            dice = (2.0 * inter + 1.0) / (denom + 1.0)
            # classes absent from an image count only through false positives
            per_image = ops.sum(present * dice + (1 - present) * (1.0 / (denom + 1.0)), -1)
            soft_dice = per_image / num_classes
            loss = loss + self.dice_weight * (1.0 - soft_dice)[:, None, None]
        return _mean_over_valid(loss, valid)

    def get_config(self):
        config = super().get_config()
        config.update(
            ce_weight=self.ce_weight,
            dice_weight=self.dice_weight,
            focal_weight=self.focal_weight,
            focal_gamma=self.focal_gamma,
            ignore_class=self.ignore_class,
        )
        return config
