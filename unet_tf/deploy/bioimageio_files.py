"""The files of a bioimage.io package: weights, test tensors, sample TIFFs, cover, card.

:func:`write_files` writes them into a staging folder for
:func:`unet_tf.deploy.bioimageio.write_bioimageio`, which describes and validates them.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np

from unet_tf.checkpoint import RunInfo

WEIGHTS_FILE = "weights.zip"
SERVING_ENDPOINT = "serve"  # what bioimageio.core's TF 2 adapter calls first
INPUT_ID = "image"
OUTPUT_ID = "probabilities"


def package_input(image: np.ndarray, info: RunInfo) -> np.ndarray:
    """A uint8 image [H, W, C] -> the package's input: float32 pixels 0..255 [1, y, x, C].

    The model's channels; runs trained with ``resolution="resize"`` at their training size,
    runs at native resolution mirror-padded to a multiple of ``2**depth`` (as unet_tf's
    serving does).

    Examples:
        >>> from unet_tf.config import ModelConfig
        >>> info = RunInfo(ModelConfig(depth=2), ("a", "b"), (32, 48), {"resolution": "native"})
        >>> package_input(np.full((30, 17, 3), 128, np.uint8), info).shape
        (1, 32, 20, 3)
    """
    from unet_tf.data.preprocess import resize_image
    from unet_tf.serving import pad_to_multiple

    image = check_content(np.asarray(image))
    if image.ndim == 2:
        image = image[..., None]
    size = None if info.native else tuple(info.input_size)
    pixels = resize_image(image[None], size, info.model.input_channels)
    if info.native:
        pixels = pad_to_multiple(pixels, info.model.size_multiple)
    return np.asarray(pixels, np.float32)


def check_content(image: np.ndarray) -> np.ndarray:
    """``image`` unless it is blank: bioimageio.spec refuses test tensors near 0."""
    image = np.asarray(image)
    if not np.any(np.abs(image) >= 1):
        raise ValueError(f"test_image is blank (shape {image.shape}, every pixel value below "
                         "1); give an image with content for the bioimage.io test tensors")
    return image


def probability_model(model):
    """The Keras model with a softmax after its logits (float32), as the package's weights."""
    import keras

    probabilities = keras.layers.Softmax(axis=-1, dtype="float32", name=OUTPUT_ID)(
        model.outputs[0])
    return keras.Model(model.input, probabilities, name=f"{model.name}_probabilities")


def write_files(model, info: RunInfo, run_dir: Path, image: np.ndarray,
                 stage: Path) -> dict[str, Path]:
    """The package's files, written into ``stage``: weights, test tensors, cover, card."""
    model = probability_model(model)
    files = {"weights": _write_saved_model_zip(model, info, stage)}
    pixels = package_input(image, info)
    scaled = pixels * np.float32(info.preprocessing["scale"]) + np.float32(
        info.preprocessing["offset"])
    probabilities = np.asarray(model(scaled, training=False), np.float32)
    files["test_input"] = stage / "test_input.npy"
    files["test_output"] = stage / "test_output.npy"
    np.save(files["test_input"], pixels)
    np.save(files["test_output"], probabilities)
    # the same tensors for people and image viewers (bioimage.io's "sample tensors")
    files["sample_input"] = _write_tiff(pixels[0], stage / "sample_input.tif")
    files["sample_output"] = _write_tiff(probabilities[0], stage / "sample_output.tif")
    files["cover"] = _write_cover(pixels[0], probabilities[0], info, stage / "cover.png")
    card = run_dir / "README.md"
    files["documentation"] = stage / "README.md"
    if card.is_file():
        shutil.copyfile(card, files["documentation"])
    else:
        files["documentation"].write_text(model_card(info, run_dir.name), encoding="utf-8")
    return files


def _write_saved_model_zip(model, info: RunInfo, stage: Path) -> Path:
    """A SavedModel of ``model`` with one endpoint, zipped with saved_model.pb at the root."""
    import keras
    import tensorflow as tf

    from unet_tf.deploy.savedmodel import quiet_tensorflow_logs

    folder = stage / "saved_model"
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(image):
        return {OUTPUT_ID: model(image, training=False)}

    signature = tf.TensorSpec([None, None, None, info.model.input_channels], tf.float32,
                              name=INPUT_ID)
    archive.add_endpoint(SERVING_ENDPOINT, serve, input_signature=[signature])
    with quiet_tensorflow_logs():
        archive.write_out(str(folder), verbose=False)
    path = stage / WEIGHTS_FILE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.rglob("*")):
            zf.write(file, file.relative_to(folder).as_posix())
    return path


def _write_tiff(array: np.ndarray, path: Path) -> Path:
    import tifffile

    tifffile.imwrite(path, array, photometric="minisblack", planarconfig="contig")
    return path


def _write_cover(pixels: np.ndarray, probabilities: np.ndarray, info: RunInfo,
                 path: Path) -> Path:
    """cover.png: the test image beside its predicted classes, with a legend."""
    from PIL import Image

    from unet_tf.viz import colorize, legend_strip, side_by_side

    image = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    height = 256
    # nearest-neighbour upscaling first: side_by_side's smooth resize would blend classes
    factor = max(1, height // probabilities.shape[0])
    mask = colorize(np.argmax(probabilities, axis=-1), len(info.class_names))
    mask = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
    panels = side_by_side([image, mask], ["input", "predicted classes"], height=height)
    cover = np.concatenate([panels, legend_strip(info.class_names, panels.shape[1])], axis=0)
    Image.fromarray(cover).save(path)
    return path


def model_card(info: RunInfo, run_name: str) -> str:
    """A short README.md for a run without one, from its config.json.

    Examples:
        >>> from unet_tf.config import ModelConfig
        >>> info = RunInfo(ModelConfig(), ("bg", "cell"), (64, 64), {"resolution": "native"})
        >>> "## Validation" in model_card(info, "cells")
        True
    """
    m = info.model
    lines = [
        f"# U-Net {run_name}",
        "",
        f"A U-Net (depth {m.depth}, {m.base_filters} base filters, {m.input_channels} input "
        f"channel(s)) trained with unet_tf to label every pixel as one of "
        f"{len(info.class_names)} classes: {', '.join(info.class_names)}.",
        "",
        *_io_lines(info),
        "",
        *_training_lines(info),
        "",
        *_validation_lines(info),
        "",
        "## Limitations",
        "",
        "Trained on the data above only; check it on images like yours before relying on it.",
        "",
    ]
    return "\n".join(lines)


def _io_lines(info: RunInfo) -> list[str]:
    """The card's "Input and output": scaling, size multiple, resolution, probabilities."""
    lines = [
        "## Input and output",
        "",
        f"- Input `{INPUT_ID}`: float32 [batch, y, x, channel], pixel values 0..255; the "
        f"package's `scale_linear` preprocessing multiplies them by "
        f"{info.preprocessing.get('scale', 1.0):.6g} and adds "
        f"{info.preprocessing.get('offset', 0.0):g}. y and x must be multiples of "
        f"{info.model.size_multiple}.",
    ]
    if info.native:
        lines.append("- Trained at native resolution: feed images at their own pixel size "
                     "(pad them to the multiple above).")
    else:
        height, width = info.input_size
        lines.append(f"- Trained on images resized to {height} x {width} pixels: resize "
                     "images to about that size before segmenting them (bioimage.io has no "
                     "resize step; unet_tf's own predictors resize and resize back).")
    lines.append(
        f"- Output `{OUTPUT_ID}`: float32 [batch, y, x, class], softmax probabilities of the "
        "classes in the order above; the class of a pixel is the argmax over the last axis.")
    return lines


def _training_lines(info: RunInfo) -> list[str]:
    """The card's "Training": data and epochs, as config.json records them."""
    lines = ["## Training", ""]
    data = info.extra.get("data") or {}
    train = info.extra.get("train") or {}
    if data:
        lines.append(f"- Data: `{data.get('spec')}`, images at {data.get('image_size')}.")
    if train:
        lines.append(f"- {info.extra.get('epochs_done', train.get('epochs'))} epochs, "
                     f"learning rate {train.get('learning_rate')}.")
    return lines


def _validation_lines(info: RunInfo) -> list[str]:
    """The card's "Validation": the saved epoch's scores, and how to check on other data."""
    lines = ["## Validation", ""]
    metrics = info.extra.get("saved_metrics") or {}
    scores = {k[len("val_"):]: v for k, v in metrics.items()
              if k.startswith("val_") and k != "val_loss"}
    if scores:
        lines.append("Scores on the run's validation images after training:")
        lines.append("")
        lines += [f"- {key}: {value:.4f}" for key, value in sorted(scores.items())]
    else:
        lines.append("No validation scores were recorded for this run.")
    lines += ["", "Validate on your own labelled images with `unet-tf evaluate` (the run "
              "folder) or compare this package's argmax with your masks (intersection over "
              "union per class)."]
    return lines
