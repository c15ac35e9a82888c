"""A .onnx file written by :func:`unet_tf.export`, run with onnxruntime.

The file holds the SavedModel's ``serving_default`` (:mod:`unet_tf.deploy.onnx`): uint8
images of any size in, ``mask`` and ``probabilities`` at that size out, preprocessing and
the resize back inside, so this predictor only feeds it. Tiles at their own pixel size are
the same call for native-resolution runs; for runs that resize to the training size the file
has no tile path (see :mod:`unet_tf.deploy.onnx`), and ``predict(tile=...)`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unet_tf.predictors.base import Predictor, check_classes, read_config
from unet_tf.serving import SERVING_INPUT

INSTALL_HINT = 'pip install "unet-tf[onnx]"'
OUTPUTS = ("mask", "probabilities")


class OnnxRuntimeMissing(ImportError, ValueError):
    """onnxruntime is not installed (a ValueError too, so the command line prints one line)."""


def import_onnxruntime():
    """The ``onnxruntime`` module, or :class:`OnnxRuntimeMissing` naming the install command."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxRuntimeMissing(
            f"running .onnx files needs onnxruntime, which is not installed: {INSTALL_HINT}"
        ) from exc
    return onnxruntime


class OnnxPredictor(Predictor, kind="onnx"):
    """A .onnx file with the SavedModel's serving contract, run by onnxruntime on the CPU.

    Examples:
        >>> predictor = OnnxPredictor(Path("pets-export/model.onnx"))  # doctest: +SKIP
        >>> predictor.predict(np.zeros((45, 70, 3), np.uint8)).shape  # doctest: +SKIP
        (45, 70)
    """

    format = "onnx"

    @classmethod
    def open(cls, path, num_threads=None, trusted=False, **options) -> OnnxPredictor:
        return cls(path, num_threads=num_threads, **options)

    def __init__(self, path: Path, num_threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)):
        ort = import_onnxruntime()
        config = read_config(path, path.parent)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own Fail, InvalidGraph, ... types
            raise ValueError(f"{path}: onnxruntime cannot load this file ({exc})") from exc
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if (list(inputs) != [SERVING_INPUT] or inputs[SERVING_INPUT].type != "tensor(uint8)"
                or not set(OUTPUTS) <= outputs.keys()):
            found = [f"{i.name}: {i.type}" for i in inputs.values()]
            raise ValueError(
                f"{path}: expected one input {SERVING_INPUT!r} (uint8) and outputs "
                f"{list(OUTPUTS)}; found inputs {found}, outputs {list(outputs)}. Export the "
                "model with unet_tf.export(..., ExportConfig(formats=('onnx',)))")
        classes = outputs["probabilities"].shape[-1]
        if isinstance(classes, int):
            check_classes(config, classes, path)
        super().__init__(path, config)

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask, probabilities = self.session.run(list(OUTPUTS), {SERVING_INPUT: images})
        return mask, probabilities

    def _segment(self, images):
        return self._run(np.ascontiguousarray(images, np.uint8))

    def _segment_tiles(self, tiles):
        if not self.native:
            h, w = self.input_size
            raise ValueError(
                f"{self.path}: this ONNX file resizes every image to the training size {h}x{w} "
                "and has no tile path; segment tiles at their pixel size with the export's "
                "saved_model/ or a .tflite file, or leave out tile")
        return self._run(np.ascontiguousarray(tiles, np.uint8))[1]
