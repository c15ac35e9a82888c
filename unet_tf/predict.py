"""One predictor for every format: a run directory / .keras file, a SavedModel, a .tflite file.

``Predictor.from_path(path).predict(image)`` returns a uint8 class mask at the image's own
size whatever the format, and ``predict(image, return_probabilities=True)`` adds float32
softmax probabilities [H, W, classes]. Every format goes through the same steps:

1. :func:`unet_tf.data.preprocess_image` (bilinear resize to the training size, scale to
   [0, 1]) -- the function training used;
2. the network, which returns logits at the training size;
3. :func:`postprocess`: logits resized back to the image's own size (bilinear, as
   :func:`unet_tf.data.preprocess.resize_logits`), then softmax and argmax.

For Keras models and SavedModels, all three steps run inside one TensorFlow function (the
SavedModel's ``serving_default`` signature is that function, see :func:`serving_function`).
TFLite files hold step 2 only, with a static input [1, H, W, C] of pixel values 0..255 at
the training size (float32, or uint8 for int8 files; the scaling to [0, 1] is inside the
file); the predictor resizes the pixels with the same ``preprocess_image`` and the logits
back with the same ``postprocess``.

Example:
    >>> from unet_tf.predict import Predictor
    >>> predictor = Predictor.from_path("pets-export/model_int8.tflite")  # doctest: +SKIP
    >>> mask = predictor.predict("cat.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from unet_tf.checkpoint import CONFIG_FILE
from unet_tf.data.preprocess import preprocess_image, resize_image, resize_logits

SAVED_MODEL_DIR = "saved_model"  # SavedModel folder inside an export directory
LABELS_FILE = "labels.txt"
SERVING_INPUT = "images"  # name of the SavedModel signature's input


def postprocess(logits: tf.Tensor, size) -> tuple[tf.Tensor, tf.Tensor]:
    """Logits [N, h, w, K] -> (uint8 mask [N, H, W], float32 probabilities [N, H, W, K]).

    The logits are resized to ``size`` (H, W) first, bilinearly, so that class boundaries
    are interpolated at the image's own resolution instead of being blocky upsampled masks.

    Example:
        >>> mask, probs = postprocess(tf.zeros([1, 8, 8, 3]), (20, 30))
        >>> tuple(mask.shape), tuple(probs.shape)
        ((1, 20, 30), (1, 20, 30, 3))
    """
    logits = resize_logits(tf.cast(logits, tf.float32), size)
    mask = tf.cast(tf.argmax(logits, axis=-1), tf.uint8)
    return mask, tf.nn.softmax(logits, axis=-1)


def serving_function(model, input_size: Sequence[int], channels: int):
    """The SavedModel's ``serving_default``: uint8 images of any size -> mask, probabilities.

    Args:
        model: a Keras model returning logits.
        input_size: (height, width) the model was trained at (config.json ``input_size``).
        channels: channels the model expects (1 for grayscale models, converted inside).

    Returns:
        A Python function of ``images`` (uint8 [batch, height, width, 3]) returning
        ``{"mask": uint8 [batch, height, width], "probabilities": float32
        [batch, height, width, classes]}``, ready for ``tf.function`` or
        ``keras.export.ExportArchive.add_endpoint``.
    """
    size = (int(input_size[0]), int(input_size[1]))

    def serve(images):
        x = preprocess_image(images, size, channels)
        logits = model(x, training=False)
        mask, probabilities = postprocess(logits, tf.shape(images)[1:3])
        return {"mask": mask, "probabilities": probabilities}

    return serve


def serving_signature() -> tf.TensorSpec:
    """The input spec of ``serving_default``: uint8 RGB images, any batch and size."""
    return tf.TensorSpec([None, None, None, 3], tf.uint8, name=SERVING_INPUT)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB [H, W, 3], turned upright by its EXIF orientation.

    Phone photos are often stored sideways with an EXIF tag saying how to rotate them;
    ``PIL.ImageOps.exif_transpose`` applies it, so masks match what people see.

    Example:
        >>> read_image("cat.jpg").shape  # doctest: +SKIP
        (480, 640, 3)
    """
    from PIL import Image, ImageOps

    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from exc


def as_rgb(image: Any) -> np.ndarray:
    """An image array or file path -> uint8 RGB [H, W, 3] (gray repeated, alpha dropped)."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]; got shape {array.shape}"
        )
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and array.max() <= 1.0:
            raise ValueError(
                "got a float image with values in [0, 1]; pass uint8 pixels 0..255 "
                "(e.g. (image * 255).astype('uint8'))"
            )
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def load_info(*candidates: Path) -> dict[str, Any] | None:
    """The first config.json found in ``candidates`` (folders), or None."""
    for folder in candidates:
        path = Path(folder) / CONFIG_FILE
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return None


class Predictor:
    """Segment images with a trained model in any format; see :meth:`from_path`.

    Attributes:
        path: the model file or folder.
        format: "keras", "savedmodel" or "tflite" (with its quantization, e.g. "tflite-int8").
        class_names: class names in index order.
        input_size: (height, width) the model was trained at (None when unknown).
    """

    format = "unknown"

    def __init__(self, path: Path, class_names: Sequence[str], input_size, config: dict | None):
        self.path = Path(path)
        self.class_names = tuple(class_names)
        self.input_size = tuple(input_size) if input_size is not None else None
        self.config = config or {}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, format={self.format!r}, "
            f"classes={list(self.class_names)}, input_size={self.input_size})"
        )

    @classmethod
    def from_path(cls, path: str | Path, num_threads: int | None = None) -> Predictor:
        """Load a predictor for a run directory, .keras file, SavedModel or .tflite file.

        Args:
            path: a run directory (with model.keras), a .keras file, a SavedModel folder,
                an export directory (its ``saved_model/`` is used) or a .tflite file.
            num_threads: CPU threads of the TFLite interpreter (None: its default). Keras
                and SavedModels use TensorFlow's global thread settings.

        Returns:
            A :class:`Predictor` whose ``predict`` works the same for every format.

        Example:
            >>> p = Predictor.from_path("saved_models/pets")  # doctest: +SKIP
            >>> p.predict(np.zeros((300, 200, 3), np.uint8)).shape  # doctest: +SKIP
            (300, 200)
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist; expected a run directory, a .keras file, a SavedModel "
                "folder, an export directory or a .tflite file"
            )
        if path.suffix == ".tflite":
            return TFLitePredictor(path, num_threads=num_threads)
        if path.suffix == ".keras":
            return KerasPredictor(path)
        if path.is_dir():
            if (path / "saved_model.pb").exists():
                return SavedModelPredictor(path)
            if (path / SAVED_MODEL_DIR / "saved_model.pb").exists():
                return SavedModelPredictor(path / SAVED_MODEL_DIR)
            if (path / "model.keras").exists():
                return KerasPredictor(path)
            contents = sorted(p.name for p in path.iterdir())[:10]
            raise ValueError(
                f"{path} holds neither model.keras, saved_model.pb nor {SAVED_MODEL_DIR}/ "
                f"(found {contents}); pass a run directory, an export directory or a model file"
            )
        raise ValueError(
            f"{path}: unknown model format {path.suffix!r}; use a .keras or .tflite file, a "
            "run directory or a SavedModel folder"
        )

    def predict(self, image: Any, return_probabilities: bool = False):
        """Segment one image at its own size.

        Args:
            image: uint8 [H, W, 3] RGB (also [H, W], [H, W, 1] or RGBA), or an image file
                path (read upright, following its EXIF orientation).
            return_probabilities: also return float32 softmax probabilities [H, W, K].

        Returns:
            uint8 class mask [H, W], or (mask, probabilities).

        Example:
            >>> mask, probs = predictor.predict(image, return_probabilities=True)  # doctest: +SKIP
        """
        rgb = as_rgb(image)
        mask, probabilities = self._predict(rgb)
        mask = np.asarray(mask)[0]
        if return_probabilities:
            return mask, np.asarray(probabilities)[0]
        return mask

    def _predict(self, rgb: np.ndarray):  # -> ([1, H, W] mask, [1, H, W, K] probabilities)
        raise NotImplementedError


class KerasPredictor(Predictor):
    """A run directory or .keras file, run through the same function as the SavedModel."""

    format = "keras"

    def __init__(self, path: Path, model=None, info=None):
        if model is None:
            from unet_tf.checkpoint import load_run

            model, info = load_run(path)
        super().__init__(path, info.class_names, info.input_size, info.to_dict())
        self.model = model
        serve = serving_function(model, info.input_size, info.model.input_channels)
        self._serve = tf.function(serve, input_signature=[serving_signature()])

    @classmethod
    def from_model(cls, model, info, path: str | Path = "<memory>") -> KerasPredictor:
        """A predictor for a Keras model already in memory and its RunInfo."""
        return cls(Path(path), model=model, info=info)

    def _predict(self, rgb):
        out = self._serve(tf.constant(rgb[None]))
        return out["mask"], out["probabilities"]


class SavedModelPredictor(Predictor):
    """A SavedModel folder with the ``serving_default`` signature written by export."""

    format = "savedmodel"

    def __init__(self, path: Path):
        loaded = tf.saved_model.load(str(path))
        if "serving_default" not in loaded.signatures:
            raise ValueError(
                f"{path}: the SavedModel has no serving_default signature (found "
                f"{sorted(loaded.signatures)}); export it with unet_tf.export"
            )
        self._loaded = loaded  # keeps the variables alive
        self._serve = loaded.signatures["serving_default"]
        config = load_info(path, path.parent)
        num_classes = self._serve.structured_outputs["probabilities"].shape[-1]
        names, size = names_and_size(config, num_classes)
        super().__init__(path, names, size, config)

    def _predict(self, rgb):
        out = self._serve(**{SERVING_INPUT: tf.constant(rgb[None])})
        return out["mask"], out["probabilities"]


class TFLitePredictor(Predictor):
    """A .tflite file run with the LiteRT interpreter (``ai_edge_litert``)."""

    format = "tflite"

    def __init__(self, path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"{path}: LiteRT cannot load this file ({exc})") from exc
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        shape = self._input["shape"]
        if len(shape) != 4 or shape[0] != 1:
            raise ValueError(f"{path}: expected an input of shape [1, H, W, C]; got {shape}")
        config = load_info(path.parent)
        names, _ = names_and_size(config, int(self._output["shape"][-1]))
        super().__init__(path, names, (int(shape[1]), int(shape[2])), config)
        self.channels = int(shape[3])
        quantization = (config or {}).get("export", {}).get("tflite", {}).get(path.name, {})
        self.format = f"tflite-{quantization.get('quantize', 'unknown')}"

    def pixels(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB at any size -> the model's input [1, H, W, C] at the training size."""
        pixels = resized_pixels(rgb, self.input_size, self.channels)
        scale, zero_point = self._input["quantization"]
        if scale:  # quantized input: q = p / scale + zero_point
            pixels = pixels / scale + zero_point
        info = np.iinfo(self._input["dtype"]) if self._input["dtype"] != np.float32 else None
        if info is None:
            return pixels.astype(np.float32)
        return np.clip(np.rint(pixels), info.min, info.max).astype(self._input["dtype"])

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Run the interpreter on model input [1, H, W, C]; float32 logits [1, H, W, K]."""
        self.interpreter.set_tensor(self._input["index"], pixels)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        scale, zero_point = self._output["quantization"]
        if scale:
            return (out.astype(np.float32) - zero_point) * scale
        return out.astype(np.float32)

    def _predict(self, rgb):
        logits = self.logits(self.pixels(rgb))
        return postprocess(tf.constant(logits), rgb.shape[:2])


def resized_pixels(rgb: np.ndarray, size, channels: int) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float32 pixels 0..255 [1, h, w, channels] at the training size.

    TFLite files scale pixels themselves, so they get :func:`resize_image`, the resize and
    channel conversion half of the training preprocessing.

    Example:
        >>> resized_pixels(np.full((50, 70, 3), 255, np.uint8), (32, 32), 1).shape
        (1, 32, 32, 1)
    """
    return resize_image(rgb[None], tuple(size), channels).numpy()


def names_and_size(config: dict | None, num_classes: int):
    """Class names and training size from a config.json dict, or placeholders."""
    if config and config.get("class_names"):
        names = tuple(config["class_names"])
        if len(names) != num_classes:
            raise ValueError(
                f"config.json names {len(names)} classes {list(names)} but the model "
                f"outputs {num_classes}; is it the config of another model?"
            )
    else:
        names = tuple(f"class_{i}" for i in range(num_classes))
    size = tuple(config["input_size"]) if config and config.get("input_size") else None
    return names, size


# ----------------------------------------------------------------------------- Pictures


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap font size
        return ImageFont.load_default()


def legend_strip(class_names: Sequence[str], width: int, colors: np.ndarray | None = None):
    """A white uint8 RGB strip [h, width, 3] of colour swatches with the class names."""
    from PIL import Image, ImageDraw

    from unet_tf.viz import class_colors

    colors = class_colors(len(class_names)) if colors is None else colors
    size = max(12, min(24, width // 40))
    font = _font(size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows, x, y = [], 0, 0
    for name in class_names:  # wrap entries onto as many rows as the width needs
        w = size + 6 + int(draw.textlength(str(name), font=font)) + size
        if x and x + w > width:
            x, y = 0, y + size + 8
        rows.append((x, y, name))
        x += w
    strip = Image.new("RGB", (width, y + size + 12), "white")
    draw = ImageDraw.Draw(strip)
    for (x, y, name), color in zip(rows, colors, strict=True):
        box = [x + 6, y + 6, x + 6 + size, y + 6 + size]
        draw.rectangle(box, fill=tuple(int(c) for c in color), outline="black")
        draw.text((x + size + 12, y + 6), str(name), fill="black", font=font)
    return np.asarray(strip)


def overlay_with_legend(image: np.ndarray, mask: np.ndarray, class_names: Sequence[str],
                        alpha: float = 0.5) -> np.ndarray:
    """The image with its mask in class colours and a legend naming the classes below it.

    Example:
        >>> pic = overlay_with_legend(np.zeros((60, 80, 3), np.uint8), np.zeros((60, 80)),
        ...                           ["pet", "background"])
        >>> pic.shape[1], pic.shape[0] > 60
        (80, True)
    """
    from unet_tf.viz import overlay

    blended = overlay(as_rgb(image), np.asarray(mask).astype(np.int64), len(class_names),
                      alpha=alpha)
    return np.concatenate([blended, legend_strip(class_names, blended.shape[1])], axis=0)


def predict_files(
    predictor: Predictor, paths: Sequence[str | Path], out_dir: str | Path
) -> list[dict[str, Any]]:
    """Segment image files; write ``NAME_mask.png`` and ``NAME_overlay.png`` for each.

    ``NAME_mask.png`` is a single-channel PNG of class indices at the photo's own (upright)
    size; ``NAME_overlay.png`` shows the classes in colour with a legend.

    Returns:
        One entry per image: its path, size, written files and the fraction of each class.

    Example:
        >>> predict_files(Predictor.from_path("run"), ["cat.jpg"], "out")  # doctest: +SKIP
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        image = read_image(path)
        mask = predictor.predict(image)
        stem = Path(path).stem
        mask_path, overlay_path = out / f"{stem}_mask.png", out / f"{stem}_overlay.png"
        Image.fromarray(mask).save(mask_path)
        Image.fromarray(overlay_with_legend(image, mask, predictor.class_names)).save(
            overlay_path)
        counts = np.bincount(mask.ravel(), minlength=predictor.num_classes)
        results.append({
            "image": str(path),
            "size": [int(mask.shape[0]), int(mask.shape[1])],
            "mask": str(mask_path),
            "overlay": str(overlay_path),
            "fractions": {n: round(float(c) / mask.size, 4)
                          for n, c in zip(predictor.class_names, counts, strict=True)},
        })
    return results
