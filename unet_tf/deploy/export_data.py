"""The data an export is checked with: int8 calibration images and parity examples.

By default both come from the run's own recorded data (:func:`export_data`); the data's
classes are matched to the model's by name (:func:`raw_examples`).
"""

from __future__ import annotations

from pathlib import Path

from unet_tf.checkpoint import RunInfo
from unet_tf.config import DataConfig
from unet_tf.data import class_lookup, load_source, remap_labels


def export_data(
    info: RunInfo, data: DataConfig | None
) -> tuple[DataConfig, str | None, DataConfig, str | None]:
    """(calibration data, its subset, parity data, its subset) for a run.

    Representative (calibration) images come from the run's training data; parity images
    from its validation data (its ``validation_data``, or the held-out fraction of its
    training data). An explicit ``data`` is split the same way (seeded fraction).
    """
    if data is not None:
        return data, "training", data, "validation"
    if info.extra.get("data"):
        train = DataConfig.from_dict(info.extra["data"])
        if info.extra.get("validation_data"):
            return train, None, DataConfig.from_dict(info.extra["validation_data"]), None
        return train, "training", train, "validation"
    raise ValueError(
        "this model has no recorded training data (a bare .keras file?); pass data= "
        "(--data SPEC) for the int8 calibration images and the parity check"
    )


def raw_examples(
    config: DataConfig, subset: str | None, limit: int, info: RunInfo, model: str | Path = "",
):
    """Up to ``limit`` raw (uint8 image [H, W, C], int32 mask [H, W]) pairs at their own size.

    Masks hold the model's class indices: the data's classes are matched to the model's by
    name (:func:`unet_tf.data.class_lookup`); data of other classes raise ``ValueError``.
    """
    source = load_source(config, subset=subset)
    lookup = class_lookup(source.class_names, info.class_names, source.description,
                          str(model) or "being exported")
    pairs = [(image.numpy(), remap_labels(mask.numpy()[..., 0], lookup))
             for image, mask in source.examples.take(limit)]
    return pairs, source.description
