"""Pictures for the README: augmented image/mask pairs and the U-Net weight map.

Writes ``docs/augment_pets.png`` (an Oxford pet and its trimap, original and augmented as in
the pets recipe) and ``docs/augment_isbi.png`` (an ISBI slice with elastic deformation and
rotation as in the paper variant of the ISBI recipe, and the weight map of the deformed mask).

Usage (from the repository root): ``python -m benchmarks recipe_figures``; records which
files it wrote (and how long it took) in ``benchmarks/results/recipe_figures.jsonl``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from benchmarks.harness import measure, record
from benchmarks.recipe_common import ROOT, parse_args
from unet_tf import AugmentConfig, DataConfig
from unet_tf.data import load_source, preprocess_image, resize_mask
from unet_tf.data.augment import augment_pair
from unet_tf.data.weightmap import unet_weight_map
from unet_tf.viz import _pyplot, overlay


def first_example(config: DataConfig, channels: int):
    image, mask = next(iter(load_source(config).examples))
    size = config.image_size
    return preprocess_image(image, size, channels), resize_mask(mask, size)


def figure(image, mask, config, num_classes, path, weight_classes=None, seeds=(1, 2, 3)):
    plt = _pyplot()
    rows = 3 if weight_classes is not None else 2
    fig, axes = plt.subplots(rows, len(seeds) + 1, figsize=(2.4 * (len(seeds) + 1), 2.4 * rows),
                             squeeze=False)
    pairs = [(image, mask, "original")]
    for seed in seeds:
        aug_image, aug_mask = augment_pair(image, mask, tf.constant([seed, 0]), config)
        pairs.append((aug_image, aug_mask, f"seed {seed}"))
    for col, (img, msk, title) in enumerate(pairs):
        img, msk = np.asarray(img), np.asarray(msk)[..., 0]
        axes[0, col].imshow(img.squeeze(), cmap="gray")
        axes[0, col].set_title(title)
        axes[1, col].imshow(overlay(img, msk, num_classes, alpha=0.45))
        if weight_classes is not None:
            axes[2, col].imshow(unet_weight_map(msk, weight_classes), cmap="magma")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("mask overlay")
    if weight_classes is not None:
        axes[2, 0].set_ylabel("weight map")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path}")


NAME = "recipe_figures"


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], epochs=0, argv=argv,
                      prog=f"python -m benchmarks {NAME}")
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with measure() as took:
        draw(args.data_root, docs)
    record(NAME, "figures", {"data_root": str(args.data_root)},
           {"files": ["docs/augment_pets.png", "docs/augment_isbi.png"], **took})


def draw(data_root, docs) -> None:
    pets = DataConfig(spec=f"oxford-pets:{data_root / 'oxford_pets_sample'}",
                      image_size=(128, 128))
    image, mask = first_example(pets, 3)
    pets_aug = AugmentConfig(flip=True, scale=(1.0, 1.5), rotate=15.0, brightness=0.15,
                             contrast=0.15, saturation=0.2, hue=0.02)
    figure(image, mask, pets_aug, 3, docs / "augment_pets.png")
    isbi = DataConfig(spec=f"folder:{data_root / 'isbi2012_em'}", image_size=(256, 256),
                      class_names=("membrane", "interior"), mask_values=(0, 255))
    image, mask = first_example(isbi, 1)
    # elastic sigma scales with the size: 10 px at 512 px is 5 px at this 256 px picture
    isbi_aug = AugmentConfig(flip=True, vertical_flip=True, rotate90=True, scale=(1.0, 1.0),
                             brightness=0.1, contrast=0.1, elastic=5.0, rotate=15.0)
    figure(image, mask, isbi_aug, 2, docs / "augment_isbi.png", weight_classes=(1,))


if __name__ == "__main__":
    main()
