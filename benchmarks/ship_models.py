"""Train, tune, score and package the shipped models of ``saved_models/`` (issue 26).

Each shipped model is the run of one benchmark recipe, trained on ``../shared/data`` exactly
as the recipe says (``python -m benchmarks recipe_X --only VARIANT``), then packaged:

1. ``model.keras`` without optimizer state (plain Keras loads it; ``compile`` to fine-tune),
   ``config.json`` (the run's, data paths relative to the repository root, plus ``shipped``:
   task, licence, dev score, provenance), ``history.json``;
2. its post-processing stored in config.json: an instance model's thresholds chosen by
   :func:`unet_tf.tuning.tune` on 30 *training* images (its held-out images are the dev
   score's), the TTA the recipe scores with;
3. ``model_int8.tflite`` from ``unet_tf.export`` (its parity check on held-out images must pass);
4. the dev score from the very command the model card prints (``unet-tf evaluate --model
   NAME ...``, run in-process), and the model card ``README.md``.

Results (scores, sizes, times) are recorded, one record per model, in
``benchmarks/results/ship_models.jsonl`` (:mod:`benchmarks.harness`: with the host and
commit); cards and numbers are never typed by hand.

Usage (from the repository root; ~20-45 min per model on a 2-core CPU):
``python -m benchmarks ship_models --only nuclei,pets [--package-only]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import record as record_result
from benchmarks.recipe_common import ROOT, RUNS, SHARED_DATA, cpu, relative_paths

SHIPPED = ROOT / "saved_models"
DATA = "../shared/data"  # as the model cards write it: relative to the repository root

# name -> how it is made and described. evaluate: the card's command after `--model NAME`.
MODELS = {
    "nuclei": {
        "recipe": "recipe_dsb", "variant": "instances", "run": "dsb_instances",
        "task": "instance segmentation of nuclei (background / interior / boundary + "
                "seeded watershed)",
        "data": "DSB 2018 stage1_train nuclei (BBBC038, Caicedo et al. 2019; community-fixed "
                "labels): a seeded 80% (314 images) of the 393 in ../shared/data",
        "licence": "CC0 (the training data's licence; the weights carry no other terms)",
        "spdx": "CC0-1.0",
        "tune": {"subset": "training", "tta": "all"},
        "evaluate": ["--data", f"instances:{DATA}/dsb2018_nuclei", "--subset", "validation"],
        "dev": "the other seeded 20% (79 images, never trained on nor tuned on)",
        "headline": ("ap_50_95", "AP@[.5:.95]"),
        "limits": "Fluorescence and brightfield nuclei of the DSB 2018 modalities, at their "
                  "own pixel size (nuclei ~10-60 px across). Not trained on tissue "
                  "histology at other magnifications or on whole cells.",
    },
    "pets": {
        "recipe": "recipe_pets", "variant": "default", "run": "pets_default",
        "task": "semantic segmentation of pet photos (pet / background / border); the model "
                "unet-tf blur uses",
        "data": "Oxford-IIIT Pet (Parkhi et al. 2012), a 3-breed sample: a seeded 80% (240) "
                "of its 300 trainval images",
        "licence": "CC BY-SA 4.0 (the training data's licence: share-alike applies to the "
                   "weights)",
        "spdx": "CC-BY-SA-4.0",
        "postprocess": {"tta": "flips"},  # the recipe's headline: photos have an up
        "evaluate": ["--data", f"oxford-pets:{DATA}/oxford_pets_sample", "--subset",
                     "validation"],
        "dev": "the other seeded 20% (60 images)",
        "headline": ("mean_iou", "mean IoU"),
        "limits": "Three breeds only (Abyssinian, Bengal, American bulldog): other breeds, "
                  "other animals and people are out of its training distribution; the "
                  "border class is a thin band and scores lowest.",
    },
    "membranes": {
        "recipe": "recipe_isbi", "variant": "plain", "run": "isbi_plain",
        "task": "semantic segmentation of cell membranes in serial-section electron "
                "microscopy (membrane / interior), the U-Net paper's task",
        "data": "ISBI 2012 EM segmentation challenge training volume (Cardona et al. 2010; "
                "Drosophila first-instar larva ventral nerve cord, ssTEM): slices 00-16 of "
                "the 22 in ../shared/data",
        "licence": "research use: the ISBI 2012 challenge data carries no open licence; "
                   "cite Cardona et al. 2010 and Arganda-Carreras et al. 2015, and do not "
                   "use the weights commercially without the data owners' consent",
        "spdx": "LicenseRef-research-use",
        # the recipe's split: symlinks to slices 17-21 under its --runs folder
        "evaluate": ["--data", "folder:saved_models/recipes/isbi_split", "--split", "val",
                     "--classes", "membrane,interior", "--mask-values", "0,255"],
        "dev": "slices 17-21 (5 slices, never trained on; folder made by the recipe)",
        "headline": ("mean_iou", "mean IoU"),
        "limits": "ssTEM of one Drosophila larva volume at its own resolution (4x4x50 nm "
                  "voxels, 512 x 512 slices), trained on 17 slices: other EM modalities, "
                  "tissues or pixel sizes need fine-tuning (`unet-tf train --init membranes`). "
                  "It predicts membrane pixels, not a neuron segmentation: thin or faint "
                  "membranes break and merge neighbouring cells.",
    },
    "street": {
        "recipe": "recipe_camvid", "variant": "balanced", "run": "camvid_balanced",
        "task": "semantic segmentation of street scenes (CamVid, 11 classes; void ignored)",
        "data": "CamVid (Brostow et al. 2009) in the 11-class SegNet version: its train "
                "split (367 frames of driving video, Cambridge UK)",
        "licence": "CC BY-NC 4.0 (CamVid's terms: personal and research use only; the "
                   "weights carry the same restriction)",
        "spdx": "CC-BY-NC-4.0",
        "evaluate": ["--data", f"folder:{DATA}/camvid", "--split", "val", "--classes",
                     "sky,building,pole,road,pavement,tree,sign_symbol,fence,car,pedestrian,"
                     "bicyclist", "--mask-values", "0,1,2,3,4,5,6,7,8,9,10",
                     "--ignore-values", "11"],  # benchmarks/data/camvid.json
        "dev": "CamVid's val split (101 frames). Caution: val is a sequence of the same "
               "drives as train, so it flatters the model: on CamVid's separate test split "
               "(233 frames the project never had) the same recipe scored 0.455 mean IoU "
               "against 0.595 on val",
        "headline": ("mean_iou", "mean IoU"),
        "limits": "Daytime driving video from one city (Cambridge, UK, 2007-2008), 360 x 480 "
                  "frames segmented at 192 x 256: expect much lower quality on other cities, "
                  "cameras, night or weather. Thin and rare classes (pole, sign, pedestrian, "
                  "bicyclist) score far below road, sky and buildings. Not for driving "
                  "decisions.",
    },
}


def run_recipe(spec: dict, runs: Path) -> None:
    command = [sys.executable, "-m", "benchmarks", spec["recipe"], "--only", spec["variant"],
               "--runs", str(runs)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def package(name: str, spec: dict, run: Path) -> dict:
    """saved_models/NAME from a finished recipe run; returns its results record."""
    import keras

    from unet_tf import ExportConfig, export
    from unet_tf.cli import main as cli
    from unet_tf.tuning import tune

    dest = SHIPPED / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    model = keras.saving.load_model(run / "model.keras", compile=False)
    model.save(dest / "model.keras")  # uncompiled: the network alone, no optimizer state
    shutil.copy(run / "history.json", dest / "history.json")
    config = json.loads(relative_paths((run / "config.json").read_text()))
    config["shipped"] = {"task": spec["task"], "licence": spec["licence"],
                         "spdx": spec["spdx"]}  # the bioimage.io export's licence
    if "postprocess" in spec:
        config["postprocess"] = dict(spec["postprocess"])
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    record = {"recipe": f"python -m benchmarks {spec['recipe']} --only {spec['variant']}",
              "train_seconds": config.get("train_seconds"),
              "precision": config.get("precision", "float32"), "cpu": cpu()}
    if "tune" in spec:
        record["postprocess"] = tune(dest, **spec["tune"])
    with tempfile.TemporaryDirectory() as tmp:
        report = export(dest, Path(tmp) / "export", ExportConfig(formats=("tflite-int8",)))
        shutil.copy(Path(tmp) / "export" / "model_int8.tflite", dest / "model_int8.tflite")
        record["int8_parity"] = report["parity"]
    command = ["evaluate", "--model", name, *spec["evaluate"]]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        if cli([*command, "--out", tmp]) != 0:
            raise SystemExit(f"unet-tf {' '.join(command)} failed")
        scores = json.loads((Path(tmp) / "report.json").read_text())
        record["evaluate_seconds"] = round(time.time() - start, 1)
    key, label = spec["headline"]
    record.update({"command": "unet-tf " + " ".join(command), "dev": spec["dev"],
                   "scores": {k: scores[k] for k in (
                       "mean_iou", "mean_dice", "pixel_accuracy", "per_class_iou", "tta",
                       "examples", "ap_50_95", "ap_50", "ap_75", "aji") if k in scores},
                   "headline": {"name": label, "key": key, "value": round(scores[key], 4)}})
    stored = json.loads((dest / "config.json").read_text())  # tune wrote into it
    stored["shipped"]["score"] = f"{label} {scores[key]:.3f} (dev)"
    (dest / "config.json").write_text(json.dumps(stored, indent=2) + "\n")
    record["files_mb"] = {p.name: round(p.stat().st_size / 1e6, 2) for p in sorted(
        dest.iterdir())}
    (dest / "README.md").write_text(card(name, spec, stored, record))
    return record


def card(name: str, spec: dict, config: dict, record: dict) -> str:
    """The model card: what it does, on what, how it was made and scored, its limits."""
    info = config
    native = (info.get("preprocessing") or {}).get("resolution") == "native"
    size = "any size, segmented at its own pixel size (trained on 256 px crops)" if native \
        else f"any size, resized to {'x'.join(map(str, info['input_size']))} and back"
    scores = record["scores"]
    lines = [
        f"# {name}", "",
        f"{spec['task'][0].upper()}{spec['task'][1:]}.", "",
        "| | |", "|---|---|",
        f"| classes | {', '.join(info['class_names'])} |",
        f"| input | RGB uint8 image of {size}; preprocessing {info['preprocessing']} |",
        f"| model | U-Net, {info.get('num_parameters', '?'):,} parameters "
        f"({json.dumps(info['model'])}) |",
        f"| training data | {spec['data']} |",
        f"| licence | {spec['licence']} |",
        f"| trained by | `{record['recipe']}` (then `python -m benchmarks ship_models --only "
        f"{name}`), {info.get('train_seconds', 0) / 60:.0f} min at {record['precision']} on "
        f"{record['cpu']['model']} ({', '.join(record['cpu']['flags']) or 'no AVX2'}), "
        f"2 cores, no GPU |",
        f"| post-processing | {json.dumps(info.get('postprocess', {}))} |",
        "", "## Dev score", "",
        f"**{record['headline']['name']} {record['headline']['value']:.3f}** on {spec['dev']}, "
        "with the stored post-processing, reproduced by:", "",
        "```", record["command"], "```", "",
        "| metric | value |", "|---|---|",
    ]
    for key in ("ap_50_95", "ap_50", "ap_75", "aji", "mean_iou", "mean_dice", "pixel_accuracy"):
        if key in scores:
            lines.append(f"| {key} | {scores[key]:.4f} |")
    lines += ["", "Per-class IoU: " + ", ".join(
        f"{k} {v:.3f}" for k, v in scores["per_class_iou"].items()) + ".", "",
        "`model_int8.tflite` (full integer) agrees with the Keras model on "
        f"{100 * record['int8_parity']['formats']['tflite-int8']['agreement']:.1f}% of "
        "held-out pixels.",
        "", "## Use", "", "```",
        f"unet-tf {'instances' if 'tune' in spec else 'predict'} --model {name} IMAGE --out out/",
        f"python -c \"import unet_tf; model, info = unet_tf.load_model('{name}')\"",
        f"unet-tf train --init {name} --data ...   # fine-tune on your images", "```", "",
        "## Intended use and limits", "", spec["limits"], "",
        "Scores are on a development split of the data the model was trained from; other "
        "parts of the same datasets are kept aside by the project to re-measure them.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ship_models",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated, of {','.join(MODELS)} (default: all)")
    parser.add_argument("--package-only", action="store_true",
                        help="package the recipe runs already in --runs, do not train")
    parser.add_argument("--runs", type=Path, default=RUNS, help=f"(default: {RUNS})")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(MODELS)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {','.join(MODELS)}")
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"{SHARED_DATA} not found: the shipped models train on it")
    for name in names:
        spec = MODELS[name]
        if not args.package_only:
            run_recipe(spec, args.runs)
        record = package(name, spec, args.runs / spec["run"])
        settings = {k: record[k] for k in ("recipe", "precision", "command", "dev")}
        record_result("ship_models", name, settings,
                      {k: v for k, v in record.items() if k not in settings and k != "cpu"})
        print(f"--- {name}: {record['headline']} -> {SHIPPED / name}", flush=True)


if __name__ == "__main__":
    main()
