"""Print the README's recipe tables (Markdown) from ``benchmarks/results/recipe_*.json``.

Usage (from the repository root): ``python benchmarks/recipe_tables.py``
"""

from __future__ import annotations

import json

from recipe_common import RESULTS

LABELS = {
    "unet": "**U-Net recipe** (`unet`)",
    "unet_float32": "the U-Net recipe in float32 (the default precision before issue 12)",
    "unet_balanced": "+ median-frequency class weights (`unet_balanced`, border x2.36)",
    "unet_wm": "+ class weights + weight map on the border band (`unet_wm`, w0 = 5)",
    "default": "the recipe's data and loss on the default `fast` preset (`default`)",
    "default_lean": "the same on `lean`, the default before `fast` (`default_lean`)",
    "lean": "the same on `lean`, before it became the default (rotation by the gather "
            "resampler)",
    "small_float32": "the same on `small` in float32 (the defaults before issue 12)",
    "keras_io": "keras-io example's model (RMSprop, CE, batch 32, no augmentation; `keras_io`)",
    "isbi:plain": "**plain** (CE; the recipe)",
    "isbi:plain_float32": "plain in float32 (the default precision before issue 12)",
    "isbi:paper": "paper: weight map (w0 10, sigma 5, w_c balanced) + elastic 10 px "
                  "+ rotation 15 degrees (`paper`)",
    "isbi:elastic": "elastic 10 px + rotation 15 degrees, no weight map (`elastic`)",
    "isbi:plain_80_epochs": "plain, 80 epochs (`--epochs 80`)",
    "isbi:plain_160_epochs": "plain, 160 epochs (`--epochs 160`)",
    "camvid:balanced": "**balanced**: sqrt median-frequency weights + Dice (the recipe; "
                       "the default `fast` preset)",
    "camvid:balanced_lean": "balanced on `lean` (the default before `fast`)",
    "camvid:balanced_float32": "balanced on `small` in float32 (before issue 12)",
    "camvid:plain": "plain (CE, no class weights; `small`, float32)",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def ordered(results: dict, first: tuple[str, ...]) -> list[tuple[str, dict]]:
    """The variants named in ``first`` (the recipe, then its earlier run) before the rest."""
    rank = {name: i for i, name in enumerate(first)}
    return sorted(results.items(), key=lambda item: rank.get(item[0], len(first)))


def f3(value) -> str:
    return "" if value is None else f"{value:.3f}"


def f4(value) -> str:
    return "" if value is None else f"{value:.4f}"


def ious(report: dict, classes) -> str:
    return " / ".join(f3(report["per_class_iou"][c]) for c in classes)


def scoring(report: dict, served: bool) -> str:
    """Where a score comes from: the served path (logits resized back, this version) or an
    earlier version (probabilities resized back, or scored at the model's input size)."""
    if served:
        return "served path"
    return "earlier: native" if report.get("scored_at") == "native" else "earlier: input size"


def epochs_time(v: dict) -> str:
    """Epochs, training time, the median epoch's training images/s where the run recorded
    it (runs trained before unet_tf printed its speed did not) and the precision it trained
    at (runs before issue 12 trained in float32)."""
    speed = v.get("train_images_per_second")
    return (f"{v['epochs']}, {v['train_seconds']:.0f} s"
            + (f", {speed:.1f} images/s" if speed else "")
            + f", {v.get('precision', 'float32')}" + (" + XLA" if v.get("jit_compile") else ""))


def pets() -> None:
    results = load("recipe_pets")
    classes = ("pet", "background", "border")
    print("| variant | epochs, training time | scored | no TTA | pet / background / border "
          "| native size, flips TTA | pet / background / border | pixel acc. (native, flips) "
          "| training images (inference mode) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("unet", "unet_float32", "unet_balanced", "unet_wm", "default", "default_lean",
                 "lean", "small_float32", "keras_io"):
        if name not in results:
            continue
        v = results[name]
        # "heldout_flips": scored on the served path (this version); "heldout_flips_native":
        # an earlier version, which resized probabilities (and scored "heldout" at 128 px)
        flips = v.get("heldout_flips") or v.get("heldout_flips_native")
        # entries that record jit_compile were written after the served-path change
        served = "heldout_flips" in v or "jit_compile" in v
        print(f"| {label(name)} | {epochs_time(v)} | {scoring(v['heldout'], served)} "
              f"| {f3(v['heldout']['mean_iou'])} "
              f"| {ious(v['heldout'], classes)} | {f3(flips and flips['mean_iou'])} "
              f"| {ious(flips, classes) if flips else ''} "
              f"| {f3(flips and flips['pixel_accuracy'])} "
              f"| {f3(v['train_subset']['mean_iou'])} |")


def isbi() -> None:
    results = load("recipe_isbi")
    print("| variant | epochs, training time | pixel error | membrane IoU | pixel error, TTA "
          "| membrane IoU, TTA |")
    print("|---|---|---|---|---|---|")
    for name, v in ordered(results, ("plain", "plain_float32")):
        if not isinstance(v, dict) or "test" not in v:
            continue
        t, tta = v["test"], v["test_tta"]
        print(f"| {label('isbi:' + name)} | {epochs_time(v)} | {f4(1 - t['pixel_accuracy'])} "
              f"| {f3(t['per_class_iou']['membrane'])} | {f4(1 - tta['pixel_accuracy'])} "
              f"| {f3(tta['per_class_iou']['membrane'])} |")


def camvid() -> None:
    results = load("recipe_camvid")
    rare = ("pole", "sign_symbol", "fence", "pedestrian", "bicyclist")
    print("| variant | epochs, training time | scored | val mean IoU, native 360 x 480 "
          "| pixel acc. | pole | sign | fence | pedestrian | bicyclist | building | car |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, v in ordered(results, ("balanced", "balanced_lean", "balanced_float32")):
        if not isinstance(v, dict) or "val" not in v:
            continue
        served = "val_native" not in v  # earlier versions scored "val" at 192 x 256
        val = v["val"] if served else v["val_native"]
        cells = " | ".join(f3(v["val"]["per_class_iou"][c]) for c in (*rare, "building", "car"))
        print(f"| {label('camvid:' + name)} | {epochs_time(v)} | {scoring(val, served)} "
              f"| {f3(val['mean_iou'])} | {f3(val['pixel_accuracy'])} | {cells} |")


if __name__ == "__main__":
    for title, table in (("pets", pets), ("ISBI 2012", isbi), ("CamVid", camvid)):
        print(f"\n{title}\n")
        table()
