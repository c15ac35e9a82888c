import json

import keras
import numpy as np
import pytest

from unet_tf.losses import SegmentationLoss

LABELS = np.array([[[0], [0]], [[1], [1]]], np.int32)[None]  # [1, 2, 2, 1]
EVEN = np.zeros((1, 2, 2, 2), np.float32)  # logits 0: every pixel 0.5 / 0.5


def test_dice_on_known_inputs():
    loss = SegmentationLoss(ce_weight=0.0, dice_weight=1.0)
    # per class: intersection 2 * 0.5 = 1, sum of probs 2 + pixels 2; (2*1+1)/(4+1) = 0.6
    assert float(loss(LABELS, EVEN)) == pytest.approx(1 - 0.6, abs=1e-6)
    # confident and right: Dice -> 1, loss -> 0
    perfect = np.where(np.eye(2, dtype=bool)[LABELS[..., 0]], 20.0, -20.0).astype(np.float32)
    assert float(loss(LABELS, perfect)) == pytest.approx(0.0, abs=1e-6)


def test_dice_skips_ignored_pixels():
    labels = LABELS.copy()
    labels[0, 0, 1, 0] = 255
    loss = SegmentationLoss(ce_weight=0.0, dice_weight=1.0)
    # class 0: (2*0.5+1)/(1.5+1+1) = 4/7; class 1: (2*1+1)/(1.5+2+1) = 2/3
    expected = 1 - (4 / 7 + 2 / 3) / 2
    assert float(loss(labels, EVEN)) == pytest.approx(expected, abs=1e-6)


def test_cross_entropy_focal_and_combination():
    ce = float(SegmentationLoss()(LABELS, EVEN))
    assert ce == pytest.approx(np.log(2.0), abs=1e-6)
    focal = float(SegmentationLoss(ce_weight=0.0, focal_weight=1.0)(LABELS, EVEN))
    assert focal == pytest.approx(0.25 * np.log(2.0), abs=1e-6)  # (1 - 0.5)^2 * CE
    both = float(SegmentationLoss(ce_weight=1.0, dice_weight=0.5)(LABELS, EVEN))
    assert both == pytest.approx(np.log(2.0) + 0.5 * 0.4, abs=1e-6)


def test_ignored_pixels_and_sample_weights():
    labels = np.full((1, 2, 2, 1), 255, np.int32)
    labels[0, 0, 0, 0] = 1
    # only one labelled pixel: the mean is over it alone, not diluted by the ignored three
    assert float(SegmentationLoss()(labels, EVEN)) == pytest.approx(np.log(2.0), abs=1e-6)
    weights = np.array([[[2.0, 0.0], [0.0, 0.0]]], np.float32)  # e.g. a weight map
    weighted = float(SegmentationLoss()(LABELS, EVEN, sample_weight=weights))
    assert weighted == pytest.approx(2.0 * np.log(2.0) / 4, abs=1e-6)


def test_config_round_trip_and_serialization():
    loss = SegmentationLoss(ce_weight=0.5, dice_weight=1.0, focal_weight=0.2, ignore_class=None)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(loss)))
    again = keras.saving.deserialize_keras_object(config)
    assert isinstance(again, SegmentationLoss)
    assert again.get_config() == loss.get_config()
