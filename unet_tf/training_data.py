"""The datasets a training run fits on: training and validation data, and pixel weights.

:func:`unet_tf.train` reads its data here: the two datasets with their sources (their
classes must agree), the class weights (given, or balanced from the training masks) and the
per-pixel weights they become (the U-Net paper's border weight map, or one weight per class).
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from unet_tf.config import DataConfig, TrainConfig
from unet_tf.data import make_dataset
from unet_tf.data.class_weights import (
    BALANCING_POWERS,
    balanced_class_weights,
    class_frequencies,
    with_class_weights,
)
from unet_tf.data.source import Source
from unet_tf.data.weightmap import with_weight_map

logger = logging.getLogger("unet_tf")


def training_datasets(data_config: DataConfig, val_config: DataConfig | None
                      ) -> tuple[tf.data.Dataset, tf.data.Dataset, Source, Source]:
    """(training, validation, training source, validation source); without ``val_config``
    the validation data is the seeded held-out part of ``data_config``."""
    if val_config is None:
        train_ds, source = make_dataset(data_config, subset="training", training=True)
        val_ds, val_source = make_dataset(data_config, subset="validation",
                                          channels=source.channels)
    else:
        train_ds, source = make_dataset(data_config, training=True)
        val_ds, val_source = make_dataset(val_config, channels=source.channels)
    if tuple(val_source.class_names) != tuple(source.class_names):
        raise ValueError(
            f"validation classes {val_source.class_names} differ from training classes "
            f"{source.class_names}"
        )
    return train_ds, val_ds, source, val_source


def class_weights(train_config: TrainConfig, data_config: DataConfig,
                  val_config: DataConfig | None, class_names) -> list[float] | None:
    """``train_config.class_weights`` as one weight per class: given, balanced from the
    training masks' class frequencies ("balanced", "sqrt_balanced"), or None."""
    weights = train_config.class_weights
    if isinstance(weights, str):
        if weights not in BALANCING_POWERS:
            raise ValueError(
                f"class_weights is one weight per class or one of {list(BALANCING_POWERS)}; "
                f"got {weights!r}"
            )
        plain, _ = make_dataset(data_config, subset="training" if val_config is None else None)
        weights = balanced_class_weights(
            class_frequencies(plain, len(class_names)), BALANCING_POWERS[weights]
        )
        logger.info("%s class weights: %s", train_config.class_weights,
                    np.round(weights, 3).tolist())
    if weights is not None and len(weights) != len(class_names):
        raise ValueError(
            f"class_weights has {len(weights)} values for {len(class_names)} classes "
            f"{list(class_names)}"
        )
    return [float(w) for w in weights] if weights is not None else None


def with_pixel_weights(train_ds: tf.data.Dataset, train_config: TrainConfig,
                       weights: list[float] | None) -> tf.data.Dataset:
    """Add per-pixel sample weights: the border weight map (with ``weights`` as its class
    term) when ``train_config.weight_map``, else the class weights; unchanged without."""
    if train_config.weight_map:
        return with_weight_map(
            train_ds, train_config.weight_map_classes, class_weights=weights,
            w0=train_config.weight_map_w0, sigma=train_config.weight_map_sigma,
        )
    if weights is not None:
        return with_class_weights(train_ds, weights)
    return train_ds
