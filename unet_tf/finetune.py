"""Fine-tuning: start training from a trained model (``TrainConfig.init``, ``train --init``).

The new run takes the architecture of the model it starts from and all of its weights; when
the new data's classes differ from the model's (by name and order), the 1x1 ``head_logits``
layer is built afresh for them and everything before it is kept. With
``TrainConfig.freeze_encoder_epochs`` the encoder (the ``enc*`` layers, their batch norm in
inference mode) is frozen for the first epochs, so the new head does not send large
gradients through features that already work.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras

from unet_tf.config import ModelConfig

logger = logging.getLogger("unet_tf")
HEAD = "head_logits"
HEAD_PREFIX = "head_"  # head_logits, head_upsample: their shapes follow the classes
ENCODER_PREFIX = "enc"  # enc1_conv1, enc1_stem, enc2_pool, ...


def initial_config(init: str | Path, class_names, channels: int) -> tuple[ModelConfig, dict]:
    """The architecture of the model ``init`` names (a shipped name or a path) for new data
    of ``class_names`` and ``channels``, and what :func:`copy_weights` needs.

    Raises:
        ValueError: the model reads images of another channel count.
    """
    from unet_tf.models import load_model

    model, info = load_model(init)
    if info.model.input_channels != channels:
        raise ValueError(
            f"{init} reads {info.model.input_channels}-channel images and the data has "
            f"{channels} channels; fine-tune a model trained on {channels}-channel images")
    same = tuple(info.class_names) == tuple(class_names)
    config = dataclasses.replace(info.model, num_classes=len(class_names))
    logger.info("init: weights of %s (classes %s)%s", init, list(info.class_names),
                "" if same else f"; a new head for {list(class_names)}")
    return config, {"model": model, "same_classes": same, "source": str(init),
                    "class_names": list(info.class_names)}


def copy_weights(model: keras.Model, start: dict) -> None:
    """Copy every layer's weights from ``start["model"]`` (the head only for the same
    classes): layers are matched by name, as both come from one ModelConfig.

    The head is every ``head_*`` layer: ``head_logits`` and, on presets with
    ``output_stride`` 2, the frozen bilinear ``head_upsample``, which has one channel per
    class and keeps the kernel the new model was built with.
    """
    source = start["model"]
    for layer in model.layers:
        if not layer.weights or (layer.name.startswith(HEAD_PREFIX)
                                 and not start["same_classes"]):
            continue
        layer.set_weights(source.get_layer(layer.name).get_weights())


class FreezeEncoder(keras.callbacks.Callback):
    """Train with the encoder frozen until epoch ``epochs``, then all of it.

    The optimizer is built over every trainable variable first, so unfreezing adds no
    variables it does not know; the train function is traced again at the switch. A resumed
    run freezes only if it resumes before the switch.
    """

    def __init__(self, epochs: int, done: int = 0):
        super().__init__()
        self.epochs, self.done, self.frozen = epochs, done, False

    def _set(self, frozen: bool) -> None:
        for layer in self.model.layers:
            if layer.name.startswith(ENCODER_PREFIX):
                layer.trainable = not frozen
        self.frozen = frozen

    def on_train_begin(self, logs=None):
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        if self.done < self.epochs:
            self._set(True)
            self.model.make_train_function(force=True)
            logger.info("encoder frozen for epochs %d-%d", self.done + 1, self.epochs)

    def on_epoch_begin(self, epoch, logs=None):
        if self.frozen and epoch >= self.epochs:
            self._set(False)
            self.model.make_train_function(force=True)
            logger.info("encoder unfrozen from epoch %d", epoch + 1)
