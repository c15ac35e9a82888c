"""Large images at full resolution: segment an 8000 x 8000 image tile by tile, peak memory.

Builds the model (untrained weights segment just as fast and use the same memory), wraps it
in the Keras predictor and runs ``Predictor.predict(image, tile=..., overlap=...)`` on a
synthetic 8000 x 8000 RGB image; prints the time, the peak resident memory of the process
(``ru_maxrss``) and the CPU, and writes ``benchmarks/results/large_image.json`` (tiny
preset) or ``large_image_PRESET.json``.

Usage (from the repository root):
``python benchmarks/large_image.py [--size 8000] [--preset small] [--tile 512]``
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16") if f in flags]
    return f"{model} ({', '.join(simd)})"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--tile-batch", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        help="results file (default: benchmarks/results/large_image.json for "
                        "the tiny preset, large_image_PRESET.json for the others)")
    args = parser.parse_args()

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
    result = {
        "image": [args.size, args.size], "preset": args.preset,
        "parameters": int(model.count_params()), "tile": args.tile, "overlap": args.overlap,
        "tile_batch": args.tile_batch, "mask_shape": list(mask.shape),
        "seconds": round(seconds, 1), "megapixels_per_s": round(args.size**2 / 1e6 / seconds, 2),
        "peak_rss_mib": round(peak_mib(), 1), "peak_rss_before_predict_mib": round(before, 1),
        "image_mib": round(image.nbytes / 2**20, 1), "cpu": cpu(),
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result, indent=1))
    out = args.out or ROOT / "benchmarks" / "results" / (
        "large_image.json" if args.preset == "tiny" else f"large_image_{args.preset}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
