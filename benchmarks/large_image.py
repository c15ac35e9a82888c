"""Large images at full resolution: segment an 8000 x 8000 image tile by tile, peak memory.

Builds the model (untrained weights segment just as fast and use the same memory), wraps it
in the Keras predictor and runs ``Predictor.predict(image, tile=..., overlap=...)`` on a
synthetic 8000 x 8000 RGB image; prints the time, the peak resident memory of the process
(``VmHWM``) and records them in ``benchmarks/results/large_image.jsonl`` (case
``large_image`` for the tiny preset, ``large_image_PRESET`` for the others).

Usage (from the repository root):
``python -m benchmarks large_image [--size 8000] [--preset f16] [--tile 512]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.harness import peak_rss_mib as peak_mib
from benchmarks.harness import record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks large_image",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--preset", default="f16")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--tile-batch", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        help="also write the result to this JSON file (the record is written "
                        "to benchmarks/results/large_image.jsonl either way)")
    args = parser.parse_args(argv)

    import numpy as np

    import unet_tf
    from unet_tf.checkpoint import RunInfo
    from unet_tf.data import PREPROCESSING
    from unet_tf.predictors.keras_model import KerasPredictor

    config = unet_tf.model_preset(args.preset, num_classes=3)
    model = unet_tf.build_unet(config)
    info = RunInfo(config, ("background", "a", "b"), (256, 256),
                   {**PREPROCESSING, "resolution": "native"})
    predictor = KerasPredictor.from_model(model, info)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    before = peak_mib()
    start = time.time()
    mask = predictor.predict(image, tile=args.tile, overlap=args.overlap,
                             tile_batch=args.tile_batch)
    seconds = time.time() - start
    settings = {"image": [args.size, args.size], "preset": args.preset,
                "parameters": int(model.count_params()), "tile": args.tile,
                "overlap": args.overlap, "tile_batch": args.tile_batch}
    metrics = {
        "mask_shape": list(mask.shape),
        "seconds": round(seconds, 1), "megapixels_per_s": round(args.size**2 / 1e6 / seconds, 2),
        "peak_rss_mib": round(peak_mib(), 1), "peak_rss_before_predict_mib": round(before, 1),
        "image_mib": round(image.nbytes / 2**20, 1),
    }
    print(json.dumps({**settings, **metrics}, indent=1))
    case = "large_image" if args.preset == "tiny" else f"large_image_{args.preset}"
    entry = record("large_image", case, settings, metrics)
    if args.out:
        args.out.write_text(json.dumps(entry, indent=1) + "\n")


if __name__ == "__main__":
    main()
