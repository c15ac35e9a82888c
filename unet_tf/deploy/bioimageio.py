"""The bioimage.io model package: a run as a model for the bioimage.io model zoo (spec 0.5).

:func:`write_bioimageio` writes a folder that bioimage.io tools (bioimageio.core, the model
zoo's checks, ilastik, deepImageJ) read without unet_tf::

    pets-bioimageio/
        rdf.yaml          the model description, built and validated with bioimageio.spec
        weights.zip       tensorflow_saved_model_bundle: endpoint "serve" (also the
                          "serving_default" signature), float32 [batch, y, x, channel] input
                          scaled to [0, 1] -> {"probabilities": float32 [batch, y, x, class]}
        test_input.npy    float32 [1, y, x, channel]: pixel values 0..255
        test_output.npy   float32 [1, y, x, class]: class probabilities for test_input.npy
        sample_*.tif      the same two tensors for image viewers
        cover.png         the test image beside its predicted classes
        README.md         the model card (the run's own README.md, or one from config.json)

What the package describes, and where each step of unet_tf's serving path went:

- **Scaling** (config.json's ``scale`` and ``offset``) is the input's ``scale_linear``
  preprocessing, so the input tensor holds plain pixel values.
- **Softmax** is inside the weights: the network returns logits, and a model zoo consumer
  that knows no softmax postprocessing (older deepImageJ, ilastik) still gets probabilities.
- **Size**: the network is fully convolutional, so y and x take any multiple of
  ``2**depth`` (a parameterized size ``min = step = 2**depth``). Resizing to the training
  size, which unet_tf does for runs trained with ``resolution="resize"``, has no
  bioimage.io step: the model card says at which size to feed such a model, and the test
  tensors are at that size.
- Channel conversion (grayscale <-> RGB) has no step either: the input takes the model's
  own channels.

Examples:
    >>> from unet_tf.deploy.bioimageio import write_bioimageio
    >>> rdf = write_bioimageio("saved_models/pets", "export/pets-bioimageio")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.checkpoint import RunInfo, load_run, resolve_model_path
from unet_tf.deploy.bioimageio_files import (
    INPUT_ID,
    OUTPUT_ID,
    SERVING_ENDPOINT,
    WEIGHTS_FILE,
    check_content,
    model_card,
    package_input,
    probability_model,
    write_files,
)

__all__ = [  # the package's files are written by unet_tf.deploy.bioimageio_files
    "INPUT_ID",
    "INSTALL_HINT",
    "OUTPUT_ID",
    "RDF_FILE",
    "SERVING_ENDPOINT",
    "UNET_DOI",
    "WEIGHTS_FILE",
    "WEIGHTS_FORMAT",
    "license_id",
    "model_card",
    "package_input",
    "probability_model",
    "require_bioimageio",
    "write_bioimageio",
]

RDF_FILE = "rdf.yaml"  # the name bioimageio.spec gives a package's description
WEIGHTS_FORMAT = "tensorflow_saved_model_bundle"
INSTALL_HINT = 'pip install "unet-tf[bioimageio]"'
# Ronneberger, Fischer, Brox (2015), "U-Net: Convolutional Networks for Biomedical Image
# Segmentation": the architecture; a DOI, because a URL would be fetched when validating
UNET_DOI = "10.1007/978-3-319-24574-4_28"


def write_bioimageio(
    model_path: str | Path,
    out_dir: str | Path,
    *,
    license: str = "CC-BY-4.0",
    name: str | None = None,
    description: str | None = None,
    authors: Sequence[str] = (),
    test_image: np.ndarray | None = None,
    zip_path: str | Path | None = None,
) -> Path:
    """Write a run as a bioimage.io model package (spec 0.5) and return its rdf.yaml.

    Args:
        model_path: run directory (model.keras + config.json) or its .keras file.
        out_dir: folder to create (it may exist if empty); see the module docstring.
        license: SPDX id of the package's licence (the weights, test data and card).
        name: the model's name on bioimage.io (letters, digits, spaces, ``_+-()``; 5 to 128
            characters). Default: "U-Net " and the run directory's name (other characters
            replaced by "-").
        description: one or two sentences. Default: what it segments, from config.json.
        authors: names of the people who trained the model (the model zoo asks for them).
        test_image: uint8 image [H, W, C] for the test tensors and the cover. Default: the
            first validation image of the run's own data (config.json's "data").
        zip_path: also write the package as one .zip file there (what the model zoo
            uploads); it is validated again when written.

    Returns:
        The path of ``out_dir / "rdf.yaml"``. Test it with ``bioimageio test PATH``.

    Raises:
        ImportError: bioimageio.spec is not installed.
        ValueError: ``out_dir`` is not empty, ``license`` is not an SPDX id, ``name`` has
            characters bioimage.io refuses, or ``test_image`` is blank (bioimage.io refuses
            test tensors of zeros).

    Examples:
        >>> rdf = write_bioimageio("saved_models/pets", "export/pets-bioimageio",
        ...                        authors=["Ada Lovelace"], license="MIT")  # doctest: +SKIP
    """
    spec = require_bioimageio()
    license = license_id(license)
    out = _new_folder(out_dir)
    _, run_dir = resolve_model_path(model_path)
    name = _model_name(name) if name is not None else _clean_name(f"U-Net {run_dir.name}")
    if test_image is not None:
        check_content(test_image)
    model, info = load_run(model_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        image = test_image if test_image is not None else _first_validation_image(info)
        files = write_files(model, info, run_dir, image, stage)
        descr = _describe(info, files, license=license, name=name, description=description,
                          authors=authors, run_name=run_dir.name)
        _save(spec, descr, stage, out, zip_path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / RDF_FILE


def _new_folder(out_dir: str | Path) -> Path:
    """``out_dir`` if it does not exist or is an empty folder, else ValueError."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; give a new folder for the "
                         "bioimage.io package")
    return out


def _save(spec, descr, stage: Path, out: Path, zip_path: str | Path | None) -> None:
    """Save the validated package into ``stage``, then move it to ``out`` (the .zip to
    ``zip_path``, validated again: save_bioimageio_package reads it back)."""
    package = spec.save_bioimageio_package_as_folder(descr, output_path=stage / "package")
    if zip_path is not None:
        Path(zip_path).parent.mkdir(parents=True, exist_ok=True)
        spec.save_bioimageio_package(descr, output_path=Path(zip_path))
    if out.exists():
        out.rmdir()
    Path(package).rename(out)


def require_bioimageio():
    """bioimageio.spec, or ImportError naming the extra that installs it (call it early)."""
    try:
        import bioimageio.spec as spec
    except ImportError as exc:
        raise ImportError(f"writing a bioimage.io package needs bioimageio.spec: "
                          f"{INSTALL_HINT}") from exc
    return spec


def license_id(license: str) -> str:
    """``license`` if bioimageio.spec knows it as a current SPDX id, else ValueError."""
    import pydantic
    from bioimageio.spec.model.v0_5 import LicenseId

    try:
        return str(LicenseId(license))
    except pydantic.ValidationError:
        raise ValueError(f"license {license!r} is not a current SPDX licence id; bioimage.io "
                         "accepts e.g. CC-BY-4.0, MIT, Apache-2.0, BSD-3-Clause") from None


def _clean_name(name: str) -> str:
    """``name`` with the characters bioimage.io refuses in names replaced by "-"."""
    return re.sub(r"[^A-Za-z0-9_+\- ()]+", "-", name).strip("-")[:128]


def _model_name(name: str) -> str:
    """``name`` if bioimage.io accepts it (its characters and length), else ValueError."""
    if not re.fullmatch(r"[A-Za-z0-9_+\- ()]{5,128}", name):
        raise ValueError(f"bioimage.io model name {name!r}: only letters, digits, spaces and "
                         f"_+-() and 5 to 128 characters are allowed; e.g. "
                         f"name={_clean_name(name)!r}")
    return name


def _first_validation_image(info: RunInfo) -> np.ndarray:
    """The first validation image of the run's recorded data (the export's parity data)."""
    from unet_tf.deploy.export_data import export_data, raw_examples

    try:
        _, _, config, subset = export_data(info, None)
    except ValueError as exc:
        raise ValueError("this model has no recorded training data; pass test_image= (a uint8 "
                         "image [H, W, C]) for the bioimage.io test tensors") from exc
    examples, _ = raw_examples(config, subset, 1, info)
    return examples[0][0]


def _describe(info: RunInfo, files: dict[str, Path], *, license: str, name: str,
              description: str | None, authors: Sequence[str], run_name: str):
    """The spec 0.5 ModelDescr of the staged files (validated by bioimageio.spec)."""
    from bioimageio.spec.model import v0_5

    return v0_5.ModelDescr(
        name=name,
        description=description or (
            f"U-Net semantic segmentation of {len(info.class_names)} classes "
            f"({', '.join(info.class_names)}), trained with unet_tf ({run_name})")[:1024],
        authors=[v0_5.Author(name=author) for author in authors],
        cite=[v0_5.CiteEntry(text="Ronneberger, Fischer and Brox (2015): U-Net: "
                                  "Convolutional Networks for Biomedical Image "
                                  "Segmentation", doi=v0_5.Doi(UNET_DOI))],
        license=license,
        tags=["unet", "semantic-segmentation", "segmentation", "2d", "tensorflow",
              "keras", "unet_tf"],
        documentation=v0_5.FileDescr(source=files["documentation"]),
        covers=[v0_5.FileDescr(source=files["cover"])],
        inputs=[_input_descr(info, files)],
        outputs=[_output_descr(info, files)],
        weights=_weights_descr(files),
        config=v0_5.Config(unet_tf=json.loads(json.dumps(_unet_tf_config(info)))),
    )


def _input_descr(info: RunInfo, files: dict[str, Path]):
    """The input tensor: pixel values 0..255 of any multiple of 2**depth, scaled linearly."""
    from bioimageio.spec.model import v0_5

    m = info.model
    size = v0_5.ParameterizedSize(min=m.size_multiple, step=m.size_multiple)
    channel_names = ["r", "g", "b"] if m.input_channels == 3 else [
        f"channel{i}" for i in range(m.input_channels)]
    scale = float(info.preprocessing.get("scale", 1.0))
    offset = float(info.preprocessing.get("offset", 0.0))
    preprocessing = [] if (scale, offset) == (1.0, 0.0) else [
        v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=scale, offset=offset))]
    resolution = ("native resolution" if info.native else
                  f"images resized to {info.input_size[0]} x {info.input_size[1]} px")
    return v0_5.InputTensorDescr(
        id=v0_5.TensorId(INPUT_ID),
        description=f"pixel values 0..255; trained on {resolution}",
        axes=[v0_5.BatchAxis(),
              v0_5.SpaceInputAxis(id=v0_5.AxisId("y"), size=size),
              v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=size),
              v0_5.ChannelAxis(channel_names=channel_names)],
        data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 255.0)),
        preprocessing=preprocessing,
        test_tensor=v0_5.FileDescr(source=files["test_input"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_input"]),
    )


def _output_descr(info: RunInfo, files: dict[str, Path]):
    """The output tensor: class probabilities at the input's size."""
    from bioimageio.spec.model import v0_5

    same_as_input = {axis: v0_5.SizeReference(tensor_id=v0_5.TensorId(INPUT_ID),
                                              axis_id=v0_5.AxisId(axis)) for axis in "yx"}
    return v0_5.OutputTensorDescr(
        id=v0_5.TensorId(OUTPUT_ID),
        description="softmax class probabilities (argmax: the class of each pixel)",
        axes=[v0_5.BatchAxis(),
              v0_5.SpaceOutputAxis(id=v0_5.AxisId("y"), size=same_as_input["y"]),
              v0_5.SpaceOutputAxis(id=v0_5.AxisId("x"), size=same_as_input["x"]),
              v0_5.ChannelAxis(channel_names=list(info.class_names))],
        data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        test_tensor=v0_5.FileDescr(source=files["test_output"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_output"]),
    )


def _weights_descr(files: dict[str, Path]):
    """The zipped SavedModel, with the TensorFlow and Keras versions that wrote it."""
    import keras
    import tensorflow as tf
    from bioimageio.spec.model import v0_5

    return v0_5.WeightsDescr(tensorflow_saved_model_bundle=(
        v0_5.TensorflowSavedModelBundleWeightsDescr(
            source=files["weights"],
            tensorflow_version=v0_5.Version(tf.__version__),
            comment=f"exported by unet_tf with Keras {keras.__version__}: the trained "
                    "network with a softmax after its logits",
        )))


def _unet_tf_config(info: RunInfo) -> dict[str, Any]:
    """What a unet_tf user wants back from a package: classes, size, preprocessing."""
    return {"class_names": list(info.class_names), "input_size": list(info.input_size),
            "preprocessing": info.preprocessing, "model": info.model.to_dict()}
