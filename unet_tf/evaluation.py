"""Evaluation: mean / per-class IoU and Dice, pixel accuracy, a confusion matrix, pictures.

Every image is segmented by a :class:`unet_tf.Predictor` of the Keras model, through the
functions the SavedModel serves (:mod:`unet_tf.serving`), and scored against its original
mask at its own size: the numbers are those of the served model, and a model is not
rewarded for ignoring detail that downscaling removed. Labelled pixels only (the ignore
label is skipped). Classes are matched by name: data of the model's classes in another order
are remapped, data of other classes (or instance data for a semantic model, and the reverse)
are refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from unet_tf.checkpoint import RunInfo, atomic_write_text, load_run
from unet_tf.config import DataConfig
from unet_tf.data import Source, class_lookup, load_source, remap_labels
from unet_tf.data.instances import load_instance_pairs
from unet_tf.instances import (
    comparison,
    evaluate_instances,
    is_instance_model,
    make_target,
    object_separator,
)
from unet_tf.instances.postprocess import trained_on
from unet_tf.metrics import confusion_matrix, scores_from_confusion
from unet_tf.predictors import DEFAULT_OVERLAP
from unet_tf.predictors.keras_model import KerasPredictor
from unet_tf.viz import plot_confusion, plot_images, plot_predictions

logger = logging.getLogger("unet_tf")

INSTANCE_SPECS = ("instances", "instances-foreground")  # sources with instance ids


def spread_indices(size: int, count: int) -> set[int]:
    """``count`` example indices spread evenly over ``range(size)``, first and last included."""
    if size <= 0 or count <= 0:
        return set()
    return {int(i) for i in np.linspace(0, size - 1, min(count, size)).round()}


def evaluate(model_path: str | Path, data_config: DataConfig | None = None,
             subset: str | None = None, out_dir: str | Path | None = None,
             tta: bool | str | None = None, num_pictures: int = 6, split: str | None = None,
             tile: int | None = None, overlap: int = DEFAULT_OVERLAP) -> dict:
    """Evaluate a trained model and optionally write a report folder.

    Args:
        model_path: run directory or .keras file.
        data_config: the data to evaluate on. None means the run's own validation data
            (its ``validation_data``, or the held-out subset of its training data).
        subset: None (whole split), "training" or "validation" (seeded fraction).
        out_dir: where to write ``report.json``, ``confusion.png`` and ``predictions.png``
            (created if missing; a report already there is replaced; a file is refused).
        tta: average over flips and 90-degree rotations ("flips": flips only; False:
            none). None: the run's stored choice (``unet-tf tune``), else none. Objects of
            instance data come from the run's stored post-processing too.
        num_pictures: examples in ``predictions.png``, spread evenly over the data (the
            first few frames of a video split would all show the same street).
        split: the source's split (overrides ``data_config.split``), e.g. "val".
        tile: segment each image in tiles of this size at its pixel size (see
            :meth:`unet_tf.Predictor.predict`); None: whole images.
        overlap: pixels shared by neighbouring tiles.

    Returns:
        A report: pixel accuracy, mean IoU / Dice, per-class IoU / Dice, confusion matrix
        (in the model's class order; the data's classes are matched by name);
        on ``instances:`` data also the objects' scores (:func:`unet_tf.instances.
        evaluate_instances`): ``ap_50_95`` (the Data Science Bowl 2018 score), ``ap_50``,
        ``ap_75``, ``aji``, and ``instances.png`` in ``out_dir`` (missed and false objects
        marked). Objects come from :func:`unet_tf.instances.label` for 3-class models and
        from connected components of the foreground for 2-class ones.

    Raises:
        ValueError: the data's classes are not the model's (by name), or instance data for
            a model that is not an instance model, or the reverse (see :func:`match_data`).

    Examples:
        >>> report = evaluate("saved_models/synthetic")  # doctest: +SKIP
        >>> report["mean_iou"]  # doctest: +SKIP
    """
    if out_dir is not None:  # before the work, not after it
        check_report_dir(Path(out_dir))
    predictor, info, data_config, subset, source = _open(model_path, data_config, subset,
                                                         split, tta)
    start = time.time()
    tally = _score(predictor, info, model_path, data_config, source, subset, split,
                   spread_indices(source.size, num_pictures), tile, overlap)
    report = _report(model_path, predictor, info, source, tile, tally, time.time() - start)
    if out_dir is not None:
        write_report(report, tally.pictures, Path(out_dir))
        if tally.object_pictures:
            plot_images(tally.object_pictures, ["predicted vs true objects"] * len(
                tally.object_pictures), Path(out_dir) / "instances.png",
                columns=min(3, len(tally.object_pictures)))
    return report


@dataclasses.dataclass
class _Tally:
    """What scoring gathers over the examples: class confusion counts, the objects (true
    ids, predicted ids) of instance data, and the examples shown in the report's pictures."""

    confusion: np.ndarray
    pictures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=list)
    objects: list[tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=list)
    object_pictures: list[np.ndarray] = dataclasses.field(default_factory=list)


def _open(model_path, data_config: DataConfig | None, subset: str | None, split: str | None,
          tta) -> tuple[KerasPredictor, RunInfo, DataConfig, str | None, Source]:
    """The model's predictor and run info, and the data to score (the run's own validation
    data when ``data_config`` is None)."""
    model, info = load_run(model_path)
    predictor = KerasPredictor.from_model(model, info, model_path, tta=tta)
    if data_config is None:
        data_config, subset = run_validation_data(info)
    source = load_source(data_config, subset=subset, split=split)
    return predictor, info, data_config, subset, source


def _score(predictor: KerasPredictor, info: RunInfo, model_path, data_config: DataConfig,
           source: Source, subset: str | None, split: str | None, show, tile: int | None,
           overlap: int) -> _Tally:
    """Segment every example and count: classes (the data's remapped to the model's), and
    objects separated from the probabilities on instance data; pictures of ``show``."""
    lookup, separate = match_data(model_path, info, data_config, source)
    k = predictor.num_classes
    tally = _Tally(np.zeros((k, k), np.int64))
    for index, (image, labels, ids) in enumerate(examples(data_config, source, subset, split)):
        pred, probabilities = predictor.predict(image, return_probabilities=True, tile=tile,
                                                overlap=overlap)
        labels = remap_labels(labels, lookup)
        tally.confusion += confusion_matrix(labels, pred, k)
        if ids is not None and separate is not None:  # objects from the probabilities too
            found = separate(probabilities)
            tally.objects.append((ids, found))
            if index in show:
                tally.object_pictures.append(comparison(image, ids, found))
        if index in show:
            tally.pictures.append((image, labels, pred))
    return tally


def _report(model_path, predictor: KerasPredictor, info: RunInfo, source: Source,
            tile: int | None, tally: _Tally, seconds: float) -> dict:
    """The report: scores from the confusion counts (and the objects), what was scored."""
    fit = info.extra.get("saved_metrics") or {}
    report = {
        "model": str(model_path),
        "data": source.description,
        "examples": source.size,
        "resolution": list(info.input_size),
        "scored_at": "native",
        "tta": predictor.tta,
        "tile": tile,
        **scores_from_confusion(tally.confusion, info.class_names),
        "confusion": tally.confusion.tolist(),
        "class_names": list(info.class_names),
        # what model.fit logged for the saved epoch: the training-data figure comes from
        # training mode (batch statistics, augmented data); a large gap to an inference-mode
        # score on the same images is the batch-norm failure this report exists to expose
        "fit_metrics": {key: fit[key] for key in ("mean_iou", "val_mean_iou") if key in fit},
        "seconds": round(seconds, 2),
    }
    if tally.objects:
        scores = evaluate_instances(tally.objects)
        report.update({key: scores[key] for key in ("ap_50_95", "ap_50", "ap_75", "aji")})
        report["instance_scores"] = scores
    return report


def match_data(
    model_path: str | Path, info: RunInfo, config: DataConfig, source: Source
) -> tuple[np.ndarray | None, Callable[..., np.ndarray] | None]:
    """Check that ``source`` can score the model; say how its labels and objects are read.

    The data's classes must be the model's, in any order (:func:`unet_tf.data.class_lookup`).
    Instance data (``instances:DIR``, ``instances-foreground:DIR``) score objects too, so
    their classes must be the model's in its own order, and ``instances:DIR`` data need an
    instance model (:func:`unet_tf.instances.is_instance_model`); an instance model is
    scored on ``instances:DIR`` data only.

    Returns:
        (the label lookup of :func:`unet_tf.data.remap_labels`, None in the model's order;
        the object post-processing for instance data, else None).

    Raises:
        ValueError: the data and the model do not match; the message says what would.
    """
    kind = config.spec.partition(":")[0]
    run = info.to_dict()
    names = list(info.class_names)
    if kind == "instances" and not is_instance_model(run):
        spec = trained_on(run)
        raise ValueError(
            f"{model_path} is not an instance model (classes {names}"
            f"{f', trained on {spec}' if spec else ''}) and {config.spec} holds instance "
            "data (scored as background / interior / boundary and as objects); evaluate a "
            "model trained on instances:DIR data on it, and this one on data of its classes"
        )
    if kind != "instances" and is_instance_model(run):
        raise ValueError(
            f"{model_path} is an instance model (classes {names}, trained on "
            f"{trained_on(run) or 'instances:DIR data'}): evaluate it on instances:DIR data, "
            f"which scores its objects too; got --data {config.spec}"
        )
    lookup = class_lookup(source.class_names, info.class_names, source.description,
                          str(model_path))
    if kind not in INSTANCE_SPECS:
        return lookup, None
    if lookup is not None:
        raise ValueError(
            f"{source.description} has classes {list(source.class_names)}, the model "
            f"{model_path} {names} in another order: objects are read from the classes by "
            "index, so instance data need a model of the same order"
        )
    return None, object_separator(run, model_path)


def examples(config: DataConfig, source, subset: str | None, split: str | None):
    """(uint8 image, int labels [H, W], instance ids [H, W] or None) at their own size."""
    kind = config.spec.partition(":")[0]
    if kind in INSTANCE_SPECS:
        config = dataclasses.replace(config, split=split) if split else config
        target = "boundary" if kind == "instances" else "foreground"
        for _, image, ids in load_instance_pairs(config, subset):
            yield image, make_target(ids, target, config.boundary_width), ids
    else:
        for image, mask in source.examples:
            yield image.numpy(), mask.numpy()[..., 0], None


def check_report_dir(out: Path) -> None:
    """Refuse a report folder that is a file (or inside one); say when a report is replaced.

    Examples:
        >>> check_report_dir(Path("/nonexistent/report"))
    """
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                what = "is a file" if path == out else f"is inside {path}, a file"
                raise ValueError(f"--out {out} {what}; pass a folder for the report (it is "
                                 "created if missing)")
            break
    if (out / "report.json").exists():
        logger.info("replacing the report in %s", out)


def write_report(report: dict, pictures: list, out: Path) -> None:
    """report.json, confusion.png and predictions.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    plot_confusion(np.asarray(report["confusion"]), report["class_names"],
                   out / "confusion.png")
    if pictures:
        images, truths, preds = zip(*pictures, strict=True)
        plot_predictions(images, truths, preds, report["class_names"], out / "predictions.png")


def run_validation_data(info: RunInfo) -> tuple[DataConfig, str | None]:
    """The data a run was validated on: its validation_data, else its held-out subset."""
    if info.extra.get("validation_data"):
        return DataConfig.from_dict(info.extra["validation_data"]), None
    if info.extra.get("data"):
        return DataConfig.from_dict(info.extra["data"]), "validation"
    raise ValueError("this model has no recorded training data; pass data_config (--data)")


def format_report(report: dict) -> str:
    """A plain-text table of the scores, for terminals and logs."""
    width = max(len(n) for n in report["class_names"]) + 2
    lines = [
        f"data: {report['data']} ({report['examples']} examples, "
        f"model input {report['resolution'][0]}x{report['resolution'][1]}"
        f"{', TTA ' + ('flips' if report['tta'] == 'flips' else 'all') if report['tta'] else ''}"
        f"{', tiles of ' + str(report['tile']) + ' px' if report.get('tile') else ''}"
        "; scored at native size)",
        f"{'class':<{width}}{'IoU':>8}{'Dice':>8}",
    ]
    for name in report["class_names"]:
        iou, dice = report["per_class_iou"][name], report["per_class_dice"][name]
        lines.append(f"{name:<{width}}{iou:>8.4f}{dice:>8.4f}")
    lines.append(f"{'mean':<{width}}{report['mean_iou']:>8.4f}{report['mean_dice']:>8.4f}")
    lines.append(f"pixel accuracy {report['pixel_accuracy']:.4f}")
    if "ap_50_95" in report:
        lines.append(
            f"objects: AP@[.5:.95] {report['ap_50_95']:.4f}, AP@.5 {report['ap_50']:.4f}, "
            f"AP@.75 {report['ap_75']:.4f}, AJI {report['aji']:.4f} "
            f"({report['instance_scores']['true_objects']} true, "
            f"{report['instance_scores']['predicted_objects']} predicted)")
    return "\n".join(lines)
