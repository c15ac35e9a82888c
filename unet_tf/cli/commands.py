"""What each ``unet-tf`` command does: build settings from the flags, call the library."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from unet_tf.cli.arguments import default_run_dir
from unet_tf.cli.flags import (
    AUGMENT_FLAGS,
    DATA_FLAGS,
    EXPORT_FLAGS,
    MODEL_FLAGS,
    THRESHOLD_FLAGS,
    TRAIN_DATA_FLAGS,
    TRAIN_FLAGS,
    config_values,
)
from unet_tf.config import AugmentConfig, DataConfig, ExportConfig, ParityThresholds, TrainConfig


def data_config(args, **changes) -> DataConfig:
    """The DataConfig that the data flags describe."""
    return DataConfig(**config_values(args, DATA_FLAGS), **changes)


def cmd_train(args) -> int:
    from unet_tf.cluster import writes_run
    from unet_tf.config import model_preset
    from unet_tf.evaluation import evaluate, format_report
    from unet_tf.training import train

    augment = (AugmentConfig.none() if args.no_augment
               else AugmentConfig(**config_values(args, AUGMENT_FLAGS)))
    data = data_config(args, **config_values(args, TRAIN_DATA_FLAGS), augment=augment)
    val = None
    if args.val_data or args.val_split:
        val = dataclasses.replace(
            data, spec=args.val_data or args.data, split=args.val_split,
            augment=AugmentConfig.none(), num_examples=None,
        )
    model = model_preset(args.preset, **config_values(args, MODEL_FLAGS))
    training = TrainConfig(**config_values(args, TRAIN_FLAGS), seed=args.seed,
                           verbose=1 if sys.stdout.isatty() else 2)
    out = Path(args.out) if args.out else default_run_dir(args.data)
    run = train(model, data, training, out, val_config=val)
    if not writes_run(args.strategy):
        return 0  # another worker of a multi-worker run: the chief writes and evaluates
    if not args.no_evaluate:
        report = evaluate(run, out_dir=run / "eval")
        print(format_report(report))
        print(f"report: {run / 'eval' / 'report.json'}")
    print(f"model: {run / 'model.keras'}")
    return 0


def cmd_evaluate(args) -> int:
    from unet_tf.evaluation import evaluate, format_report

    data = data_config(args) if args.data else None
    subset = args.subset if args.data else None
    tta = {None: None, "none": False}.get(args.tta, args.tta)  # None: the model's stored
    report = evaluate(args.model, data, subset=subset, out_dir=args.out, tta=tta,
                      tile=args.tile, overlap=args.overlap)
    print(format_report(report))
    if args.out:
        print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_export(args) -> int:
    from unet_tf.deploy import export, format_parity

    config = ExportConfig(**config_values(args, EXPORT_FLAGS),
                          thresholds=ParityThresholds(**config_values(args, THRESHOLD_FLAGS)))
    report = export(args.model, args.out, config, data=data_config(args) if args.data else None,
                    web_runtime=args.web_runtime)
    print(format_parity(report["parity"]))
    out = Path(report["out"])
    for path in sorted(out.iterdir()):
        size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else (
            path.stat().st_size)
        print(f"{path}  ({size / 1e6:.2f} MB)")
    return 0


def _predictor(args):
    from unet_tf.predictors import Predictor

    return Predictor.from_path(args.model, num_threads=args.threads, trusted=args.trust_model)


def whole_slide(args) -> bool:
    """Whether a predict / instances call goes the whole-slide way (unet_tf.wsi)."""
    return any(str(p).rstrip("/").endswith(".zarr") for p in (args.out, *args.images))


def cmd_whole_slide(args, instances: bool) -> int:
    from unet_tf.wsi import segment_large

    if len(args.images) != 1 or not str(args.out).rstrip("/").endswith(".zarr"):
        raise ValueError(f"a whole-slide job reads one image and writes NAME.ome.zarr; got "
                         f"{len(args.images)} image(s) and --out {args.out}")
    thresholds = ({"min_size": args.min_size, "interior_threshold": args.interior_threshold,
                   "foreground_threshold": args.foreground_threshold} if instances else {})
    summary = segment_large(
        args.model, args.images[0], args.out, instances, level=args.level, block=args.block,
        halo=args.halo, tile=args.tile or 512, overlap=args.overlap,
        probabilities=args.probabilities, workers=args.workers, scheduler=args.scheduler,
        overwrite=args.overwrite, trusted=args.trust_model, progress=not args.quiet,
        **thresholds)
    objects = f", {summary['objects']} objects -> {summary['table']}" if instances else ""
    height, width = summary["shape"]
    print(f"{summary['image']} (level {summary['level']}, {width}x{height}): "
          f"{summary['blocks']} blocks{' (resumed)' if summary['resumed'] else ''} in "
          f"{summary['seconds']:.1f} s, {summary['megapixels_per_s']:.2f} MP/s -> "
          f"{summary['out']}{objects}")
    return 0


def cmd_predict(args) -> int:
    from unet_tf.outputs import plan_outputs, predict_files

    if whole_slide(args):
        return cmd_whole_slide(args, instances=False)

    plan_outputs("predict", args.images, args.out, args.overwrite)  # before the model loads
    results = predict_files(_predictor(args), args.images, args.out, tile=args.tile,
                            overlap=args.overlap, overwrite=args.overwrite)
    for result in results:
        shares = ", ".join(f"{n} {100 * v:.1f}%" for n, v in result["fractions"].items())
        print(f"{result['image']}: {shares} -> {result['mask']}, {result['overlay']}")
    return 0


def cmd_blur(args) -> int:
    from unet_tf.outputs import blur_files, plan_outputs

    plan_outputs("blur", args.images, args.out, args.overwrite)  # before the model loads
    results = blur_files(_predictor(args), args.images, args.out, keep=args.keep,
                         strength=args.strength, feather=args.feather, tile=args.tile,
                         overlap=args.overlap, overwrite=args.overwrite)
    for result in results:
        print(f"{result['image']} -> {result['result']}, {result['figure']}")
    return 0


def cmd_instances(args) -> int:
    from unet_tf.outputs import instance_files, plan_outputs

    if whole_slide(args):
        return cmd_whole_slide(args, instances=True)

    plan_outputs("instances", args.images, args.out, args.overwrite)  # before the model loads
    results = instance_files(_predictor(args), args.images, args.out, min_size=args.min_size,
                             interior_threshold=args.interior_threshold,
                             foreground_threshold=args.foreground_threshold,
                             tile=args.tile, overlap=args.overlap, overwrite=args.overwrite)
    for result in results:
        print(f"{result['image']}: {result['objects']} objects -> {result['instances']}, "
              f"{result['overlay']}, {result['table']}")
    return 0


def cmd_tune(args) -> int:
    from unet_tf.tuning import tune

    data = data_config(args) if args.data else None
    result = tune(args.model, data, subset=args.subset, images=args.images,
                  tta=False if args.tta == "none" else args.tta, write=not args.dry_run)
    tuned = result["tuned_on"]
    params = ", ".join(f"{k} {v}" for k, v in result.items() if k != "tuned_on")
    print(f"{params}: AP@[.5:.95] {tuned['ap_50_95']:.4f} on {tuned['images']} images of "
          f"{tuned['data']} ({tuned['subset'] or 'all of it'}); library defaults "
          f"{tuned['default_ap_50_95']:.4f}")
    if not args.dry_run:
        print(f"stored in {args.model}'s config.json (postprocess)")
    return 0


def cmd_models(args) -> int:
    import shutil
    import textwrap

    from unet_tf.models.listing import model_details, models_table
    from unet_tf.models.registry import missing, models_dir, shipped_models

    models = shipped_models()
    if not models:
        raise FileNotFoundError(missing())
    width = shutil.get_terminal_size().columns
    if args.name:
        found = [m for m in models if m.name == args.name]
        if not found:
            raise ValueError(f"{args.name} is not a shipped model; shipped models: "
                             f"{', '.join(m.name for m in models)}")
        print(model_details(found[0], width))
    elif args.long:
        print("\n\n".join(model_details(m, width) for m in models))
    else:
        print(models_table(models, width))
        print(textwrap.fill(f"({models_dir()}; unet-tf models NAME shows one in full; use one "
                            "with --model NAME, or unet_tf.load_model(NAME))", width))
    return 0


def cmd_serve_web(args) -> int:
    from unet_tf.models.registry import resolve
    from unet_tf.web import serve

    folder = resolve(args.export)  # an export directory, a page, or a shipped model's name
    if (folder / "model.keras").is_file() and not (folder / "web").is_dir():
        from unet_tf.web.shipped import page_for_run

        folder = page_for_run(folder)  # a run with its own int8 .tflite: the shipped models
    serve(folder, port=args.port, isolate=not args.no_isolation, host=args.host)
    return 0
