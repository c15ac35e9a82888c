"""Which test-time augmentation the DSB recipe uses: chosen on training images only.

For the two runs of ``recipe_dsb.py`` (``dsb_instances``, ``dsb_semantic``), 40 training
images (another seeded sample than the recipe's 30 tuning images; the held-out 20% play no
part) are segmented without TTA, with flips, and with all 8 flips and 90-degree turns; for
each, the post-processing grid is searched and the best DSB score (ap_50_95) printed. The
run of 2026-11-26 (AMD EPYC, AVX-512 BF16) printed, best score per setting:

    instances: none 0.587, flips 0.595, all 0.607
    semantic:  none 0.524, flips 0.529, all 0.538

so the recipe scores both variants with ``TTA = "all"``. The transforms are applied here to
the image mirror-padded (numpy ``reflect``) to a multiple of 16, as the recipe's
probabilities were computed when this was run. About 15 minutes on 2 cores.

Usage (from the repository root, after ``recipe_dsb.py`` has trained both runs)::

    python benchmarks/dsb_tta_choice.py [--images 40]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from recipe_common import RUNS, SHARED_DATA

from unet_tf import DataConfig

RUNS_AND_KINDS = (("instances", "dsb_instances"), ("instances-foreground", "dsb_semantic"))


def probability_function(run):
    """(image, tta) -> softmax probabilities at the image's size, averaged over copies."""
    import keras
    import tensorflow as tf

    from unet_tf.data import preprocess_image

    model = keras.saving.load_model(run / "model.keras", compile=False)
    net = tf.function(lambda x: tf.nn.softmax(model(x, training=False), -1),
                      reduce_retracing=True)

    def probabilities(image, tta):
        h, w = image.shape[:2]
        padded = np.pad(image, [(0, -h % 16), (0, -w % 16), (0, 0)], mode="reflect")
        x = preprocess_image(padded, None, 3).numpy()
        copies = []
        for flip in (False, True) if tta else (False,):
            xf = x[:, ::-1] if flip else x
            for k in (0, 1, 2, 3) if tta == "all" else (0,):
                p = np.rot90(net(np.rot90(xf, k)[None].copy())[0].numpy(), -k)
                copies.append(p[:, ::-1] if flip else p)
        return np.mean(copies, 0)[:h, :w]

    return probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    from unet_tf.data import load_instance_pairs
    from unet_tf.instances import evaluate_instances, label, semantic_label

    root = SHARED_DATA / "dsb2018_nuclei"
    for kind, run in RUNS_AND_KINDS:
        data = DataConfig(spec=f"{kind}:{root}", image_size=(256, 256), batch_size=8,
                          resolution="native", validation_fraction=0.2, seed=0)
        pairs = load_instance_pairs(data, "training")
        pick = np.random.default_rng(1).choice(len(pairs), args.images, replace=False)
        probabilities = probability_function(RUNS / run)
        for tta in (False, "flips", "all"):
            start = time.time()
            maps = [(pairs[i][2], probabilities(pairs[i][1], tta)) for i in sorted(pick)]
            if kind == "instances":
                grid = itertools.product((0.7, 0.8, 0.9, 0.95), (0.6, 0.7, 0.8), (8, 30))
                trials = [(evaluate_instances([(t, label(p, *params)) for t, p in maps])
                           ["ap_50_95"], params) for params in grid]
            else:
                grid = itertools.product((0.5, 0.6, 0.7, 0.8, 0.9), (8, 30))
                trials = [(evaluate_instances([(t, semantic_label(p, *params)) for t, p in maps])
                           ["ap_50_95"], params) for params in grid]
            best = sorted(trials, reverse=True)[:3]
            print(f"{run} tta={tta}: best {[(round(s, 4), p) for s, p in best]} "
                  f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
