"""Recipe: DSB 2018 nuclei instances, 3-class U-Net + watershed against a semantic baseline.

Train on a seeded 80% of ``dsb2018_nuclei`` (``subset="training"``) and score objects on the
other 20% (never used for training or checkpoint selection: the last epoch is kept; its
centre crops are only logged as validation curves). Both variants train the ``small`` U-Net
on random 256 px crops at native resolution (images keep their pixel size; sizes range from
256 to 1388 px) with flips and 90-degree rotations, cross-entropy + soft Dice:

- ``instances``: targets background / interior / boundary (``instances:DIR``); objects are
  a seeded watershed of the interior probability (:func:`unet_tf.instances.label`).
- ``semantic``: targets background / foreground (``instances-foreground:DIR``), objects are
  connected components of the foreground (:func:`unet_tf.instances.semantic_label`).

Whole held-out images are segmented at their own size. The headline is the DSB 2018 score
(``ap_50_95``: TP / (TP + FP + FN) averaged over IoU thresholds 0.5..0.95, then images) and
the aggregated Jaccard index.

Usage (from the repository root): ``python benchmarks/recipe_dsb.py [--only instances,semantic]``
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
from recipe_common import parse_args, run_summary, write_results

from unet_tf import AugmentConfig, DataConfig, TrainConfig, model_preset, train

NAME = "recipe_dsb"
SPECS = {"instances": "instances", "semantic": "instances-foreground"}


def cpu() -> dict:
    """The CPU model and its vector extensions (``lscpu``)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": "unknown", "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {
        "model": fields.get("Model name", "unknown").strip(),
        "flags": sorted(f for f in flags if f == "avx2" or f.startswith("avx512")),
    }


def probability_function(run: Path):
    """image -> softmax probabilities [H, W, K] at the image's own pixel size.

    The Predictor does this for runs it recognises as native-resolution; otherwise the Keras
    model is run directly on the image mirror-padded to a multiple of 2**depth and the
    result cropped back (the U-Net is fully convolutional), which is the same computation.
    """
    from unet_tf import Predictor

    predictor = Predictor.from_path(run)
    if getattr(predictor, "native", False):
        return lambda image: predictor.predict(image, return_probabilities=True)[1]
    import keras
    import tensorflow as tf

    from unet_tf.data import preprocess_image

    model = keras.saving.load_model(run / "model.keras", compile=False)
    multiple = 2 ** json.loads((run / "config.json").read_text())["model"]["depth"]

    def probabilities(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        pad = [(0, -height % multiple), (0, -width % multiple), (0, 0)]
        x = preprocess_image(np.pad(image, pad, mode="reflect"), None, 3)[None]
        return tf.nn.softmax(model(x, training=False), -1).numpy()[0, :height, :width]

    return probabilities


def score(run: Path, data: DataConfig, objects) -> dict:
    """Object scores on the held-out subset, and seconds per image."""
    from unet_tf.data import load_instance_pairs
    from unet_tf.instances import evaluate_instances

    probabilities = probability_function(run)
    pairs, start = [], time.time()
    for _, image, true in load_instance_pairs(data, "validation"):
        pairs.append((true, objects(probabilities(image))))
    seconds = time.time() - start
    report = evaluate_instances(pairs)
    report["inference_images_per_second"] = round(len(pairs) / seconds, 2)
    return report


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], epochs=9)
    only = set(args.only.split(",")) if args.only else set(SPECS)
    from unet_tf.instances import label, semantic_label

    root = args.data_root / "dsb2018_nuclei"
    augment = AugmentConfig(
        flip=True, vertical_flip=True, rotate90=True, scale=(1.0, 1.0), brightness=0.1,
        contrast=0.1,
    )
    for name, kind in SPECS.items():
        if name not in only:
            continue
        data = DataConfig(
            spec=f"{kind}:{root}", image_size=(256, 256), batch_size=8, resolution="native",
            validation_fraction=0.2, seed=0, augment=augment,
        )
        run = args.runs / f"dsb_{name}"
        if not args.evaluate_only:
            train(model_preset("small"), data, TrainConfig(
                epochs=args.epochs, dice_weight=1.0, checkpoint="last", verbose=2,
            ), run)
        summary = run_summary(run)
        train_images = round(len(load_pairs_count(data)) * summary["epochs"])
        result = {
            **summary,
            "train_images_per_second": round(train_images / summary["train_seconds"], 2),
            "cpu": cpu(),
        }
        if name == "instances":
            result["test"] = score(run, data, label)
            # ablation: the same model's foreground as connected components (no watershed)
            result["test_components"] = score(run, data, semantic_label)
        else:
            result["test"] = score(run, data, semantic_label)
        for key in ("ap_50_95", "ap_50", "ap_75", "aji"):
            result[key] = result["test"][key]
        print(f"--- {name}: " + json.dumps({k: result[k] for k in (
            "ap_50_95", "ap_50", "ap_75", "aji", "train_seconds")}), flush=True)
        write_results(NAME, {name: result})


def load_pairs_count(data: DataConfig) -> list:
    """The training files (to count training crops per epoch)."""
    from unet_tf.data.instances import instance_files

    return instance_files(data.spec.partition(":")[2], "training", data)


if __name__ == "__main__":
    main()
