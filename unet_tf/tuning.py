"""Choose a run's object post-processing on its own images and store it in its config.json.

An instance model's objects depend on two probability thresholds and a minimum size
(:func:`unet_tf.instances.label`); the best values differ from model to model (on DSB 2018
nuclei the defaults scored 0.03 AP below the tuned ones). :func:`tune` grid-searches them on
a seeded sample of images, scored by the Data Science Bowl's AP@[.5:.95], and writes the
winner with the test-time augmentation into the run's ``config.json`` under
``postprocess``, where ``unet-tf instances``, ``evaluate`` and ``export`` find them. Tune on
images the model will not be scored on: the run's validation subset by default, or its
training images when the validation images are your test set (the DSB recipe does that).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.checkpoint import CONFIG_FILE, atomic_write_text, load_run, resolve_model_path
from unet_tf.config import DataConfig
from unet_tf.data.instances import load_instance_pairs
from unet_tf.evaluation import run_validation_data
from unet_tf.instances import evaluate_instances, is_instance_model, label, semantic_label
from unet_tf.instances.postprocess import POSTPROCESS_KEY, trained_on
from unet_tf.predictors.keras_model import KerasPredictor
from unet_tf.serving import TTA_MODES

logger = logging.getLogger("unet_tf")

# The grids of `python -m benchmarks recipe_dsb` (benchmarks/results/recipe_dsb.jsonl): DSB
# nuclei leant to high thresholds (0.5 let objects spread past the nuclei), and its best
# interior threshold was once the grid's edge (0.9).
INSTANCE_GRID = {"interior_threshold": (0.6, 0.7, 0.8, 0.9, 0.95),
                 "foreground_threshold": (0.6, 0.7, 0.8), "min_size": (8, 30)}
FOREGROUND_GRID = {"foreground_threshold": (0.5, 0.6, 0.7, 0.8, 0.9), "min_size": (8, 30)}
DEFAULT_IMAGES = 30


def tune(model: str | Path, data_config: DataConfig | None = None, subset: str | None = None,
         images: int = DEFAULT_IMAGES, tta: bool | str = False,
         grid: dict[str, tuple] | None = None, seed: int = 0, write: bool = True
         ) -> dict[str, Any]:
    """Grid-search an instance model's post-processing and store the best in config.json.

    Args:
        model: run directory (or shipped model name) of an instance model (3 classes from
            ``instances:DIR``) or a 2-class background / foreground model.
        data_config: ``instances:DIR`` or ``instances-foreground:DIR`` data; None: the
            run's own (its validation data, else the held-out subset of its training data).
        subset: "training" or "validation" (a seeded part of the data), None: with
            ``data_config`` all of it, without it the run's validation images.
        images: how many images of the subset to tune on (a seeded sample; all if fewer).
        tta: test-time augmentation the probabilities are averaged over, stored with the
            thresholds ("all", "flips" or False).
        grid: parameter -> values (default :data:`INSTANCE_GRID` or :data:`FOREGROUND_GRID`).
        seed: seed of the image sample.
        write: store the result in the run's config.json.

    Returns:
        ``{"interior_threshold": ..., "foreground_threshold": ..., "min_size": ...,
        "tta": ..., "tuned_on": {data, subset, images, ap_50_95, default_ap_50_95,
        seconds}}``: the entry written under ``postprocess``.

    Examples:
        >>> tune("saved_models/dsb2018_nuclei", images=20)  # doctest: +SKIP
    """
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}; got {tta!r}")
    model_path, run = resolve_model_path(model)
    keras_model, info = load_run(model_path)
    separate = _separator(info, run)
    if data_config is None:
        data_config, validation = run_validation_data(info)
        subset = subset or validation
    grid = grid or (INSTANCE_GRID if separate is label else FOREGROUND_GRID)
    start = time.time()
    pairs = load_instance_pairs(data_config, subset)
    if not pairs:
        raise ValueError(f"{data_config.spec} ({subset or 'all'}) holds no images to tune on")
    pick = sorted(np.random.default_rng(seed).choice(len(pairs), min(images, len(pairs)),
                                                     replace=False))
    predictor = KerasPredictor.from_model(keras_model, info, run, tta=tta)
    maps = _probability_maps(predictor, [pairs[index] for index in pick])
    best_score, best = _grid_search(maps, separate, grid)
    default = evaluate_instances([(true, separate(p)) for true, p in maps])["ap_50_95"]
    result = {**best, "tta": tta, "tuned_on": {
        "data": data_config.spec, "subset": subset, "images": len(pick), "seed": seed,
        "ap_50_95": round(float(best_score), 4), "default_ap_50_95": round(float(default), 4),
        "grid": {k: list(v) for k, v in grid.items()},
        "seconds": round(time.time() - start, 1)}}
    logger.info("tune: %s (AP@[.5:.95] %.4f on %d %s images; library defaults %.4f)",
                best, best_score, len(pick), subset or "", default)
    if write:
        _store(run, result)
    return result


def _separator(info, run: Path):
    """The function that separates objects for this model: watershed labelling for an
    instance model, connected components for a 2-class one; ValueError for others."""
    config = info.to_dict()
    separate = label if is_instance_model(config) else (
        semantic_label if len(info.class_names) == 2 else None)
    if separate is None:
        raise ValueError(
            f"{run} is not an instance model (classes {list(info.class_names)}, trained on "
            f"{trained_on(config) or 'unrecorded data'}): only the object post-processing of "
            "instance and 2-class foreground models can be tuned")
    return separate


def _grid_search(maps, separate, grid: dict[str, tuple]) -> tuple[float, dict[str, Any]]:
    """(best AP@[.5:.95], its parameters) over every combination of ``grid``'s values; the
    first of equal scores wins."""
    trials = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        scores = evaluate_instances([(true, separate(p, **params)) for true, p in maps])
        trials.append((scores["ap_50_95"], params))
    return max(trials, key=lambda t: t[0])


def _probability_maps(predictor: KerasPredictor, pairs) -> list[tuple[np.ndarray, np.ndarray]]:
    """(true instance ids, class probabilities) of each (name, image, ids) pair."""
    maps = []
    for number, (_, image, true) in enumerate(pairs, 1):
        maps.append((true, predictor.predict(image, return_probabilities=True)[1]))
        logger.info("tune: %d/%d images segmented", number, len(pairs))
    return maps


def _store(run: Path, result: dict[str, Any]) -> None:
    """Write ``result`` under the run's config.json ``postprocess`` entry."""
    path = run / CONFIG_FILE
    stored = json.loads(path.read_text())
    stored[POSTPROCESS_KEY] = result
    atomic_write_text(path, json.dumps(stored, indent=2) + "\n")
