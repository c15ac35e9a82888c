"""Write the documentation's benchmark tables from the records in ``benchmarks/results/``.

Every generated table sits between two marker comments in a Markdown file::

    <!-- tables:NAME -->
    ...written by this suite, never by hand...
    <!-- /tables:NAME -->

and names the host and commit of every number (one column, or one line for a table that
comes from a single record). ``--check`` writes nothing and exits 1 when a file would
change (the test suite runs it, so a record added without regenerating fails the tests).

Usage (from the repository root)::

    python -m benchmarks tables            # rewrite docs/benchmarks.md and README.md
    python -m benchmarks tables --check    # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable

from benchmarks.harness import RESULTS, ROOT, flat, host_label, latest, read_records

FILES = ("docs/benchmarks.md", "docs/recipes.md", "docs/export.md", "docs/web.md",
         "docs/shipped-models.md", "docs/speed.md", "docs/gpu.md", "docs/instances.md",
         "README.md")
MARKER = re.compile(
    r"(<!-- tables:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /tables:(?P=name) -->)", re.S)


# ---------------------------------------------------------------------------- cells

# Presets were renamed for what they are; records keep the names they were measured under
# (they are history), the tables print today's.
PRESET_NAMES = {"fast": "f12-os2", "lean": "f12", "small": "f16"}


def preset(name: str) -> str:
    """Today's name of a preset named in a record (``fast`` -> ``f12-os2``)."""
    return PRESET_NAMES.get(name, name)



def f3(value) -> str:
    return "" if value is None else f"{value:.3f}"


def f4(value) -> str:
    return "" if value is None else f"{value:.4f}"


def provenance(entry: dict) -> str:
    """Host, commit and date of a record: what every table names."""
    commit = f"`{entry['commit']}`" if entry.get("commit") else (
        f"no commit (legacy `{entry['legacy']}`)" if entry.get("legacy") else "no commit")
    if entry.get("commit_source"):  # a legacy record's commit, attributed from git history
        commit += " (from git history)"
    date = (entry.get("date") or "")[:10] or "undated"
    return f"{host_label(entry.get('host') or {})}; {commit}, {date}"


def source_line(suite: str, entries: list[dict] | None = None) -> str:
    line = f"Records: `benchmarks/results/{suite}.jsonl`"
    if entries is not None and len(entries) == 1:
        line += f"; host, commit: {provenance(entries[0])}"
    return line + "."


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def sourced(suite: str, header: list[str], rows: list[list[str]]) -> str:
    """A table whose last column is each row's provenance: folded into one line above the
    table when every row shares it."""
    if not rows:
        return f"No records yet: `python -m benchmarks {suite}`."
    shared = {row[-1] for row in rows}
    if len(shared) == 1:
        return (f"Records: `benchmarks/results/{suite}.jsonl`; host, commit: {shared.pop()}."
                + "\n\n" + table(header[:-1], [row[:-1] for row in rows]))
    return f"Records: `benchmarks/results/{suite}.jsonl`.\n\n" + table(header, rows)


# ---------------------------------------------------------------------------- recipes

LABELS = {
    "unet": "**U-Net recipe** (`unet`)",
    "unet_float32": "the U-Net recipe in float32 (the default precision before issue 12)",
    "unet_balanced": "+ median-frequency class weights (`unet_balanced`, border x2.36)",
    "unet_wm": "+ class weights + weight map on the border band (`unet_wm`, w0 = 5)",
    "default": "the recipe's data and loss on the default `f12-os2` preset (`default`)",
    "default_lean": "the same on `f12`, the default before `f12-os2` (`default_lean`)",
    "lean": "the same on `f12`, before it became the default (rotation by the gather "
            "resampler)",
    "small_float32": "the same on `f16` in float32 (the defaults before issue 12)",
    "keras_io": "keras-io example's model (RMSprop, CE, batch 32, no augmentation; `keras_io`)",
    "isbi:plain": "**plain** (CE; the recipe)",
    "isbi:plain_float32": "plain in float32 (the default precision before issue 12)",
    "isbi:paper": "paper: weight map (w0 10, sigma 5, w_c balanced) + elastic 10 px "
                  "+ rotation 15 degrees (`paper`)",
    "isbi:elastic": "elastic 10 px + rotation 15 degrees, no weight map (`elastic`)",
    "isbi:plain_80_epochs": "plain, 80 epochs (`--epochs 80`)",
    "isbi:plain_160_epochs": "plain, 160 epochs (`--epochs 160`)",
    "camvid:balanced": "**balanced**: sqrt median-frequency weights + Dice (the recipe; "
                       "the default `f12-os2` preset)",
    "camvid:balanced_lean": "balanced on `f12` (the default before `f12-os2`)",
    "camvid:balanced_float32": "balanced on `f16` in float32 (before issue 12)",
    "camvid:plain": "plain (CE, no class weights; `f16`, float32)",
}


def ordered(entries: dict[str, dict], first: tuple[str, ...]) -> list[tuple[str, dict]]:
    """The cases named in ``first`` (the recipe, then its earlier run) before the rest."""
    rank = {name: i for i, name in enumerate(first)}
    return sorted(entries.items(), key=lambda item: rank.get(item[0], len(first)))


def scoring(report: dict, served: bool) -> str:
    """Where a score comes from: the served path (logits resized back) or an earlier version
    (probabilities resized back, or scored at the model's input size)."""
    if served:
        return "served path"
    return "earlier: native" if report.get("scored_at") == "native" else "earlier: input size"


def epochs_time(v: dict) -> str:
    """Epochs, training time, the median epoch's images/s where recorded, and the precision
    (runs before issue 12 trained in float32)."""
    speed = v.get("train_images_per_second")
    return (f"{v['epochs']}, {v['train_seconds']:.0f} s"
            + (f", {speed:.1f} images/s" if speed else "")
            + f", {v.get('precision', 'float32')}" + (" + XLA" if v.get("jit_compile") else ""))


def pets() -> str:
    classes = ("pet", "background", "border")

    def ious(report: dict) -> str:
        return " / ".join(f3(report["per_class_iou"][c]) for c in classes)

    rows = []
    for name, entry in ordered(latest("recipe_pets"), tuple(LABELS)):
        v = flat(entry)
        if "heldout" not in v:
            continue
        # heldout_flips: scored on the served path; heldout_flips_native: an earlier version
        flips = v.get("heldout_flips") or v.get("heldout_flips_native")
        served = "heldout_flips" in v or "jit_compile" in v
        rows.append([LABELS.get(name, name), epochs_time(v), scoring(v["heldout"], served),
                     f3(v["heldout"]["mean_iou"]), ious(v["heldout"]),
                     f3(flips and flips["mean_iou"]), ious(flips) if flips else "",
                     f3(flips and flips["pixel_accuracy"]), f3(v["train_subset"]["mean_iou"]),
                     provenance(entry)])
    header = ["variant", "epochs, training time", "scored", "no TTA",
              "pet / background / border", "native size, flips TTA",
              "pet / background / border", "pixel acc. (native, flips)",
              "training images (inference mode)", "host; commit, date"]
    return sourced("recipe_pets", header, rows)


def isbi() -> str:
    rows = []
    for name, entry in ordered(latest("recipe_isbi"), ("plain", "plain_float32")):
        v = flat(entry)
        if "test" not in v:
            continue
        t, tta = v["test"], v["test_tta"]
        rows.append([LABELS.get("isbi:" + name, name), epochs_time(v),
                     f4(1 - t["pixel_accuracy"]), f3(t["per_class_iou"]["membrane"]),
                     f4(1 - tta["pixel_accuracy"]), f3(tta["per_class_iou"]["membrane"]),
                     provenance(entry)])
    header = ["variant", "epochs, training time", "pixel error", "membrane IoU",
              "pixel error, TTA", "membrane IoU, TTA", "host; commit, date"]
    return sourced("recipe_isbi", header, rows)


def camvid() -> str:
    rare = ("pole", "sign_symbol", "fence", "pedestrian", "bicyclist")
    rows = []
    for name, entry in ordered(latest("recipe_camvid"),
                               ("balanced", "balanced_lean", "balanced_float32")):
        v = flat(entry)
        if "val" not in v:
            continue
        served = "val_native" not in v  # earlier versions scored "val" at 192 x 256
        val = v["val"] if served else v["val_native"]
        rows.append([LABELS.get("camvid:" + name, name), epochs_time(v), scoring(val, served),
                     f3(val["mean_iou"]), f3(val["pixel_accuracy"]),
                     *(f3(v["val"]["per_class_iou"][c]) for c in (*rare, "building", "car")),
                     provenance(entry)])
    header = ["variant", "epochs, training time", "scored", "val mean IoU, native 360 x 480",
              "pixel acc.", "pole", "sign", "fence", "pedestrian", "bicyclist", "building",
              "car", "host; commit, date"]
    return sourced("recipe_camvid", header, rows)


def dsb() -> str:
    rows = []
    for name, entry in latest("recipe_dsb").items():
        v = flat(entry)
        if "test" not in v:
            continue
        t, c = v["test"], v.get("test_components") or {}
        rows.append([f"`{name}`", epochs_time(v), t.get("images", ""), f3(t["ap_50_95"]),
                     f3(t["ap_50"]), f3(t["ap_75"]), f3(t.get("aji")),
                     f"{f3(c.get('ap_50_95'))} / {f3(c.get('aji'))}" if c else "",
                     provenance(entry)])
    header = ["variant", "epochs, training time", "test images", "AP@[.5:.95]", "AP50",
              "AP75", "AJI", "same model, connected components: AP@[.5:.95] / AJI",
              "host; commit, date"]
    return sourced("recipe_dsb", header, rows)


# ---------------------------------------------------------------------------- the rest


def shipped() -> str:
    rows = []
    for name, entry in latest("ship_models").items():
        v = flat(entry)
        agreement = v["int8_parity"]["formats"]["tflite-int8"]["agreement"]
        # legacy records name the recipe by its earlier command
        recipe = re.sub(r"python benchmarks/(\w+)\.py", r"python -m benchmarks \1", v["recipe"])
        rows.append([f"`{name}`", f"{v['headline']['name']} {v['headline']['value']:.3f}",
                     f"`{recipe}`",
                     f"{v['train_seconds'] / 60:.0f} min, {v['precision']}",
                     f"{100 * agreement:.1f}%",
                     f"{sum(v['files_mb'].values()):.1f}", provenance(entry)])
    header = ["model", "dev score", "recipe", "training", "int8 agreement with Keras",
              "files (MB)", "host; commit, date"]
    return sourced("ship_models", header, rows)


def finetune() -> str:
    """One row per number of labelled images: from scratch against from a shipped model."""
    runs: dict[int, dict[str, dict]] = {}
    for entry in latest("finetune_bench").values():
        v = flat(entry)
        runs.setdefault(int(v["images"]), {})[v["start"]] = entry
    rows = []
    for images, pair in sorted(runs.items()):
        scratch, init = (flat(pair[k]) if k in pair else {} for k in ("scratch", "init"))
        gain = (f"{init['mean_iou'] - scratch['mean_iou']:+.3f}"
                if "mean_iou" in init and "mean_iou" in scratch else "")
        rows.append([str(images), str((init or scratch).get("steps", "")),
                     f4(scratch.get("mean_iou")),
                     f"{f4(init.get('mean_iou'))} (`{init.get('init')}`)" if init else "",
                     gain, provenance(pair.get("init") or pair["scratch"])])
    header = ["labelled images", "steps", "val mean IoU from scratch",
              "val mean IoU from a shipped model", "gain", "host; commit, date"]
    return sourced("finetune_bench", header, rows)


def export() -> str:
    entries = list(latest("export_bench").values())[-1:]
    if not entries:
        return "No records yet: `python -m benchmarks export_bench`."
    rows = []
    for r in flat(entries[0])["results"]:
        check = "-" if r["passes_strict_parity"] is None else (
            "pass" if r["passes_strict_parity"] else "FAIL")
        rows.append([r["format"], f"{r['mb']:.2f}", f"{r['ms_1_thread']:.1f}",
                     f"{r['ms_2_threads']:.1f}", f"{r['predict_ms_2_threads']:.1f}",
                     f"{100 * r['mean_iou']:.2f}", f"{100 * r['agreement']:.2f}%", check])
    return source_line("export_bench", entries) + "\n\n" + table(
        ["format", "size (MB)", "ms/image, 1 thread", "ms/image, 2 threads",
         "predict() 500x375, 2 threads (ms)", "mean IoU", "agreement with Keras",
         "strict parity"], rows)


def large_image() -> str:
    rows = []
    for entry in latest("large_image").values():
        v = flat(entry)
        rows.append([f"`{preset(v['preset'])}`", f"{v['parameters']:,}",
                     " x ".join(map(str, v["image"])),
                     f"{v['tile']} / {v['overlap']} / {v['tile_batch']}", f"{v['seconds']:.1f}",
                     f"{v['megapixels_per_s']:.2f}", f"{v['peak_rss_mib']:.0f}",
                     f"{v['image_mib']:.0f}", provenance(entry)])
    header = ["preset", "parameters", "image", "tile / overlap / tile batch", "seconds",
              "megapixels/s", "peak RSS (MiB)", "image (MiB)", "host; commit, date"]
    return sourced("large_image", header, rows)


def web() -> str:
    entries = list(latest("web_bench").values())[-1:]
    if not entries:
        return "No records yet: `python -m benchmarks web_bench`."
    v = flat(entries[0])
    rows = [[f"`{name}`", f"{min(r['agreement'].values()):.2%}",
             f"{r['page_wasm_ms']['1']:.2f}", f"{r['page_wasm_ms']['2']:.2f}",
             f"{r['page_wasm_not_isolated_ms']['1']:.2f}", f"{r['python_litert_ms']['1']:.2f}",
             f"{r['python_litert_ms']['2']:.2f}"] for name, r in v["results"].items()]
    pipeline = [[f"`{name}`", " x ".join(map(str, p["photo_size"][::-1])),
                 *(f"{p[k]:.1f}" for k in ("preprocess", "model", "postprocess", "total"))]
                for name, r in v["results"].items() if (p := r.get("page_pipeline_ms"))]
    load = v.get("load_average")
    text = (source_line("web_bench", entries) + f" {v['browser']}, LiteRT.js {v['litertjs']}"
            + (f"; load average {load[0]:.1f} during the run." if load else ".")
            + "\n\n" + table(["file", "agreement (min of 3)", "page, 1 thread (ms)",
                              "page, 2 threads (ms)", "page, not isolated (ms)",
                              "Python, 1 thread (ms)", "Python, 2 threads (ms)"], rows))
    if pipeline:
        text += "\n\nThe whole page pipeline, 2 threads:\n\n" + table(
            ["file", "photo", "resize (ms)", "model (ms)", "logits out and argmax (ms)",
             "total (ms)"], pipeline)
    return text


def speed_train() -> str:
    rows = []
    for case, entry in latest("speed").items():
        if not case.endswith("train"):
            continue
        for r in flat(entry)["rows"]:
            precision = r.get("precision", "") + (" + XLA" if r.get("xla") else "")
            rows.append([f"`{case}`", f"`{preset(r['model'])}`", r["size"], precision,
                         f"{r['images_per_s_best']:.1f}", f"{r['x_baseline']:.2f}",
                         f"{100 * r['fraction_of_matmul_peak']:.0f}%", provenance(entry)])
    header = ["record", "model", "px", "precision", "images/s (best)", "x keras-io",
              "% of matmul peak", "host; commit, date"]
    return sourced("speed", header, rows)


def overview() -> str:
    rows = []
    for path in sorted(RESULTS.glob("*.jsonl")):
        entries = read_records(path.stem)
        commits = sorted({e["commit"] for e in entries if e.get("commit")})
        legacy = sorted({e["legacy"] for e in entries if e.get("legacy")})
        hosts = sorted({host_label(e.get("host") or {}) for e in entries})
        dates = sorted(e["date"][:10] for e in entries if e.get("date"))
        rows.append([f"`{path.stem}`", len(entries), len({e["case"] for e in entries}),
                     dates[-1] if dates else "", "; ".join(hosts),
                     ", ".join(f"`{c}`" for c in commits) + (
                         (", " if commits else "") + f"legacy: {', '.join(legacy)}"
                         if legacy else "")])
    return table(["suite", "records", "cases", "latest", "hosts", "commits"], rows)


# ---------------------------------------------------------------------------- speed


def speed_sections(section: str) -> list[tuple[str, dict]]:
    """The ``speed`` records of one section (``train``, ``pipeline``, ``inference``)."""
    return [(case, entry) for case, entry in latest("speed").items()
            if case.endswith(":" + section) or case == section]


def speed_inference() -> str:
    rows = []
    for case, entry in speed_sections("inference"):
        cells: dict[tuple[str, str], dict] = {}
        for r in flat(entry)["rows"]:
            cell = cells.setdefault((r["model"], r["format"]), {"mb": r["bytes"] / 1e6})
            cell[(r["size"], r["threads"])] = r["ms_best"]
            if r["size"] == 512:
                cell["rss"] = max(cell.get("rss", 0), r["rss_peak_mib"])
        for (model, fmt), cell in cells.items():
            ms = [" / ".join(f"{cell[(size, t)]:.1f}" for t in (1, 2) if (size, t) in cell)
                  for size in (256, 512)]
            rows.append([f"`{case}`", f"`{preset(model)}`", fmt, *ms, f"{cell['mb']:.1f}",
                         f"{cell['rss']:.0f}" if "rss" in cell else "", provenance(entry)])
    header = ["record", "model", "format", "256 px, 1 / 2 threads (ms)",
              "512 px, 1 / 2 threads (ms)", "file (MB)", "peak RSS at 512 px (MiB)",
              "host; commit, date"]
    return sourced("speed", header, rows)


def speed_pipeline() -> str:
    rows = []
    for case, entry in speed_sections("pipeline"):
        for r in flat(entry)["rows"]:
            rows.append([f"`{case}`", r["source"], "x".join(map(str, r["output_size"])),
                         r["batch_size"], f"{r['cold_images_per_s']:.0f}",
                         f"{r['warm_images_per_s_best']:,.0f}",
                         f"{r['small_train_images_per_s']:.1f}",
                         f"{r['pipeline_over_training']:.1f}x", provenance(entry)])
    header = ["record", "data", "px", "batch", "cold images/s", "warm images/s (best)",
              "the default preset trains at", "warm over training", "host; commit, date"]
    return sourced("speed", header, rows)


KNOBS = {"float32": "float32", "xla": "XLA (`jit_compile=True`)", "bf16": "bfloat16",
         "bf16+xla": "bfloat16 + XLA"}


def speed_knobs() -> str:
    rows = []
    for case, entry in latest("speed_knobs").items():
        v = flat(entry)
        speed = v["images_per_second"]
        for knob, label in KNOBS.items():
            rows.append([f"`{case}`", f"`{preset(v.get('preset', 'small'))}`", label,
                         f"{speed[knob]:.1f}", f"{speed[knob] / speed['float32']:.2f}",
                         f"{100 * v['max_relative_loss_drift'][knob]:.2f}%",
                         provenance(entry)])
    header = ["record", "preset", "knob", "images/s (best)", "x float32",
              "tiny model's loss drift vs float32", "host; commit, date"]
    return sourced("speed_knobs", header, rows)


def speed_layers() -> str:
    """Convolution time grouped by width (filters), then the whole ``model.fit`` step."""
    rows = []
    for case, entry in latest("speed_layers").items():
        v = flat(entry)
        peak = v["matmul_gflops"]
        groups: dict[int, list[dict]] = {}
        for conv in v["convolutions"]:
            groups.setdefault(conv["filters"], []).append(conv)
        for filters, convs in sorted(groups.items()):
            seconds = sum(c["seconds_best"] for c in convs)
            gflops = sum(c["flops"] for c in convs) / seconds / 1e9
            rows.append([f"`{case}`", f"`{preset(v['preset'])}`",
                         f"{filters} filters", len(convs), f"{1000 * seconds:.0f}",
                         f"{100 * seconds / v['convolution_seconds']:.0f}%",
                         f"{100 * gflops / peak:.0f}%", provenance(entry)])
        rows.append([f"`{case}`", f"`{preset(v['preset'])}`", "all convolutions",
                     len(v["convolutions"]), f"{1000 * v['convolution_seconds']:.0f}", "100%",
                     "", provenance(entry)])
        rows.append([f"`{case}`", f"`{preset(v['preset'])}`", "whole `model.fit` step", "",
                     f"{1000 * v['fit_step_seconds']:.0f}", "", "", provenance(entry)])
    header = ["record", "preset", "convolutions", "layers", "ms per step",
              "share of convolution time", "% of fp32 matmul", "host; commit, date"]
    return sourced("speed_layers", header, rows)


def speed_batch_norm() -> str:
    rows = []
    for case, entry in latest("speed_layers").items():
        v = flat(entry)
        for b in v["batch_norm"]:
            model = "keras-io" if b["variant"] == "keras_io" else (
                f"`{preset(v['preset'])}`, {b['variant']}")
            rows.append([f"`{case}`", model, f"{1000 * min(b['seconds_per_step']):.0f}",
                         f"{b['images_per_s_best']:.1f}", f"{b['x_baseline']:.2f}",
                         f"{100 * b['fraction_of_matmul_peak']:.0f}%", provenance(entry)])
    header = ["record", "whole step, 128 px, batch 16", "ms per step (best)", "images/s",
              "x keras-io", "% of fp32 matmul", "host; commit, date"]
    return sourced("speed_layers", header, rows)


CANDIDATES = {"small": "`f16`", "small bf16": "`f16`, bfloat16", "b12": "`f12`",
              "b12 bf16": "`f12`, bfloat16", "d3": "`f16`, depth 3",
              "d3 bf16": "`f16`, depth 3, bfloat16", "keras_io": "keras-io (float32)"}


def speed_presets() -> str:
    rows = []
    for entry in latest("speed_presets").values():
        by = {(r["candidate"], r["size"]): r for r in flat(entry)["rows"]}
        for name, label in CANDIDATES.items():
            r, big = by.get((name, 128)), by.get((name, 256))
            if r is None:
                continue
            rows.append([label, f"{r['params'] / 1e6:.2f}", f"{r['forward_gflops']:.2f}",
                         f"{r['images_per_s_best']:.1f}", f"{r['x_baseline']:.2f}",
                         f"{100 * r['fraction_of_matmul_peak']:.0f}%",
                         f"{big['x_baseline']:.2f}" if big else "", provenance(entry)])
    header = ["candidate", "M params", "GFLOP/img fwd, 128 px", "images/s, 128 px",
              "x keras-io, 128 px", "% fp32 matmul, 128 px", "x keras-io, 256 px",
              "host; commit, date"]
    return sourced("speed_presets", header, rows)


def xla_quality() -> str:
    rows = []
    for entry in latest("xla_quality").values():
        for r in flat(entry)["runs"].values():
            rows.append([r["seed"], "on" if r["jit_compile"] else "off",
                         f3(r["best_val_mean_iou"]), r["best_epoch"],
                         f"{r['train_images_per_second']:.1f}", f"{r['train_seconds']:.0f}",
                         provenance(entry)])
    header = ["seed", "XLA", "best val mean IoU", "best epoch", "images/s",
              "train seconds", "host; commit, date"]
    return sourced("xla_quality", header, sorted(rows, key=lambda row: (row[0], row[1])))


# ---------------------------------------------------------------------------- GPU


def gpu_parity() -> str:
    rows = []
    for entry in latest("gpu_check").values():
        for name, p in flat(entry)["parity"].items():
            policy = name + (" (loss scale "
                             f"{p['final_loss_scale']:.0f})" if "final_loss_scale" in p else "")
            rows.append([policy, p["matmul_precision"], p["logits_dtype"],
                         f4(p["final_loss"]), f4(p["max_abs_diff_vs_float32"]),
                         provenance(entry)])
    header = ["policy", "matmul precision", "logits dtype", "final loss",
              "max abs diff vs float32", "host; commit, date"]
    return sourced("gpu_check", header, rows)


def gpu_speed() -> str:
    rows = []
    for case, entry in latest("gpu_check").items():
        speed: dict[tuple, dict[str, float]] = {}
        for s in flat(entry)["speed"]:
            speed.setdefault((s["size"], s["batch"], s["model"]), {})[s["policy"]] = (
                s["images_per_s"])
        for (size, batch, model), by in speed.items():
            if model == "keras_io":
                continue
            base = speed.get((size, batch, "keras_io"), {})
            ratio = " / ".join(f"{by[p] / base[p]:.2f}x" for p in ("float32", "mixed_float16")
                               if p in by and p in base)
            rows.append([f"`{case}`", f"{size}, {batch}", f"`{preset(model)}`",
                         *(f"{by[p]:.0f}" if p in by else "" for p in
                           ("float32", "mixed_float16", "mixed_bfloat16")),
                         *(f"{base[p]:.0f}" if p in base else "" for p in
                           ("float32", "mixed_float16")),
                         ratio, provenance(entry)])
    header = ["record", "size, batch", "U-Net", "float32", "float16", "bfloat16",
              "keras-io float32", "keras-io float16", "x keras-io float32 / float16",
              "host; commit, date"]
    return sourced("gpu_check", header, rows)


# ---------------------------------------------------------------------------- README

HEADLINE = (  # suite, case, what was trained, its score from the record
    ("recipe_pets", "unet", "Oxford pets sample, `f16` (residual, depth 5), 100 epochs",
     lambda v: f"mean IoU {f3(v['heldout_flips']['mean_iou'])} with flips TTA, "
               f"{f3(v['heldout']['mean_iou'])} without ({v['heldout']['examples']} images)"),
    ("recipe_pets", "default", "Oxford pets sample, default `f12-os2`, 100 epochs",
     lambda v: f"mean IoU {f3(v['heldout']['mean_iou'])}, {f3(v['heldout_flips']['mean_iou'])}"
               f" with flips ({v['heldout']['examples']} images)"),
    ("recipe_isbi", "plain", "ISBI 2012, `f16`, 300 epochs",
     lambda v: f"pixel error {f4(1 - v['test']['pixel_accuracy'])}, "
               f"{f4(1 - v['test_tta']['pixel_accuracy'])} with TTA (slices 17-21)"),
    ("recipe_camvid", "balanced", "CamVid val, default `f12-os2`, 40 epochs",
     lambda v: f"mean IoU {f3(v['val']['mean_iou'])} ({v['val']['examples']} images)"),
    ("recipe_dsb", "instances", "DSB 2018 nuclei, `f16`, 36 epochs: the shipped `nuclei`",
     lambda v: f"AP@[.5:.95] {f3(v['test']['ap_50_95'])}, AJI {f3(v['test']['aji'])} "
               f"({v['test']['images']} images)"),
)


def headline() -> str:
    rows = []
    for suite, case, what, score in HEADLINE:
        entry = latest(suite).get(case)
        if entry is None:
            continue
        v = flat(entry)
        precision = v.get("precision", "float32") + (" + XLA" if v.get("jit_compile") else "")
        rows.append([what, score(v),
                     f"[{suite}.jsonl](benchmarks/results/{suite}.jsonl) (`{case}`)",
                     f"{precision}; {provenance(entry)}"])
    return table(["recipe", "score", "records (case)", "precision; host; commit, date"], rows)


TABLES: dict[str, Callable[[], str]] = {
    "overview": overview, "headline": headline, "pets": pets, "isbi": isbi,
    "camvid": camvid, "dsb": dsb, "shipped": shipped, "finetune": finetune, "export": export,
    "large_image": large_image, "web": web, "speed_train": speed_train,
    "speed_inference": speed_inference, "speed_pipeline": speed_pipeline,
    "speed_knobs": speed_knobs, "speed_layers": speed_layers,
    "speed_batch_norm": speed_batch_norm, "speed_presets": speed_presets,
    "xla_quality": xla_quality, "gpu_parity": gpu_parity, "gpu_speed": gpu_speed,
}


def render(text: str, where: str) -> str:
    """``text`` with every marked table rewritten from the records."""
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"{where}: unknown table {name!r} in a marker; known: "
                             f"{', '.join(TABLES)}")
        return f"{match[1]}{TABLES[name]()}\n{match[4]}"
    return MARKER.sub(fill, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks tables",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file's tables are stale")
    parser.add_argument("files", nargs="*", default=FILES,
                        help=f"Markdown files, relative to the root (default: {' '.join(FILES)})")
    args = parser.parse_args(argv)
    stale = []
    for name in args.files:
        path = ROOT / name
        old = path.read_text()
        new = render(old, name)
        if new == old:
            continue
        stale.append(name)
        if args.check:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), name, f"{name} (from the records)"))
        else:
            path.write_text(new)
            print(f"wrote {name}")
    if args.check and stale:
        print(f"stale tables in {', '.join(stale)}: run `python -m benchmarks tables`",
              file=sys.stderr)
        return 1
    return 0
