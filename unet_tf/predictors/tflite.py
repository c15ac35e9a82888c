"""A .tflite file run with the LiteRT interpreter (``ai_edge_litert``).

TFLite files hold the network only, with a static input [1, h, w, C] of pixel values
0..255 (float32, or uint8 for int8 files; the scaling to [0, 1] is inside the file). The
predictor resizes pixels with the training ``resize_image`` and the logits back with the
serving ``resize_logits``; for tiles and native-resolution runs it resizes the
interpreter's input to the tile (the U-Net is fully convolutional).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_tf.data.preprocess import resize_image
from unet_tf.predictors.base import Predictor, check_classes, read_config
from unet_tf.serving import pad_to_multiple, postprocess, resize_logits


class TFLitePredictor(Predictor, kind="tflite"):
    """A .tflite file; ``format`` is its export format, e.g. ``tflite-int8``."""

    @classmethod
    def open(cls, path, num_threads=None, trusted=False, **options) -> TFLitePredictor:
        return cls(path, num_threads=num_threads)

    def __init__(self, path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        config = read_config(path, path.parent)
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
        check_classes(config, int(self._output["shape"][-1]), path)
        super().__init__(path, config)
        self.channels = int(shape[3])
        self._shape = tuple(int(v) for v in shape)
        entry = config.get("export", {}).get("tflite", {}).get(path.name, {})
        self.format = entry.get("format", "tflite")

    def pixels(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB [1, H, W, 3] -> model input [1, h, w, C] at the training size."""
        return self.quantize(resize_image(rgb, self.input_size, self.channels).numpy())

    def quantize(self, pixels: np.ndarray) -> np.ndarray:
        """Float pixels 0..255 -> the input tensor's dtype (quantized for int8 files)."""
        scale, zero_point = self._input["quantization"]
        if scale:  # quantized input: q = p / scale + zero_point
            pixels = pixels / scale + zero_point
        if self._input["dtype"] == np.float32:
            return pixels.astype(np.float32)
        info = np.iinfo(self._input["dtype"])
        return np.clip(np.rint(pixels), info.min, info.max).astype(self._input["dtype"])

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Run the interpreter on model input [1, h, w, C]; float32 logits [1, h, w, K]."""
        if tuple(pixels.shape) != self._shape:  # tiles and native-size images
            self.interpreter.resize_tensor_input(self._input["index"], list(pixels.shape))
            self.interpreter.allocate_tensors()
            self._shape = tuple(pixels.shape)
        self.interpreter.set_tensor(self._input["index"], pixels)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        scale, zero_point = self._output["quantization"]
        if scale:
            return (out.astype(np.float32) - zero_point) * scale
        return out.astype(np.float32)

    def _native_logits(self, rgb: np.ndarray) -> np.ndarray:
        """Logits of [1, H, W, 3] at its own pixel size (mirror-padded, cropped back)."""
        height, width = rgb.shape[1:3]
        x = pad_to_multiple(resize_image(rgb, None, self.channels), self.multiple).numpy()
        return self.logits(self.quantize(x))[:, :height, :width]

    def _segment(self, images):
        if self.native:
            return postprocess(self._native_logits(images))
        logits = self.logits(self.pixels(images))
        return postprocess(resize_logits(logits, images.shape[1:3]))

    def _segment_tiles(self, tiles):
        logits = np.concatenate([self._native_logits(t[None]) for t in tiles])
        return tf.nn.softmax(logits, axis=-1).numpy()
