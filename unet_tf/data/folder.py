"""Folders of images and masks: the generic layout and the Oxford-IIIT Pet archive layout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from unet_tf.config import DataConfig
from unet_tf.data.files import (
    DataError,
    MaskMapping,
    check_pairs,
    image_channels,
    list_images,
    pairs_dataset,
    scan_mask_values,
    seeded_subset,
    select_pairs,
)
from unet_tf.data.source import Source

logger = logging.getLogger("unet_tf")

MASK_DIRS = ("masks", "labels", "annotations", "trimaps")
SIDECAR = "dataset.json"
ALL = "all"  # split name of a folder without split subfolders

# Oxford-IIIT Pet trimaps: 1 foreground (pet), 2 background, 3 not classified (the border
# around the pet). The one remap of this source: trimap v -> class v - 1, the same labels as
# tfds' oxford_iiit_pet, which stores trimap - 1.
OXFORD_CLASS_NAMES = ("pet", "background", "border")
OXFORD_MAPPING = MaskMapping(values=(1, 2, 3))


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a folder")


def _image_mask_dirs(root: Path) -> tuple[Path, Path] | None:
    if not (root / "images").is_dir():
        return None
    for name in MASK_DIRS:
        if (root / name).is_dir():
            return root / "images", root / name
    return None


def folder_splits(root: Path) -> list[str]:
    """Split names of a folder dataset: subfolders holding images/ + masks/, or ["all"]."""
    if _image_mask_dirs(root):
        return [ALL]
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _image_mask_dirs(p))


def match_pairs(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """Pair images and masks by file stem; an image without mask is an error."""
    images = list_images(image_dir)
    masks = list_images(mask_dir)
    if not images:
        raise DataError(f"{image_dir} holds no image files")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise DataError(
            f"{len(missing)} images in {image_dir} have no mask in {mask_dir} "
            f"(first: {images[missing[0]].name}); masks are matched by file stem"
        )
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def read_sidecar(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read dataset description ({exc})") from exc
    allowed = {"class_names", "mask_values", "ignore_values", "palette", "ignore_colors"}
    unknown = set(meta) - allowed
    if unknown:
        raise DataError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return meta


def resolve_mapping(
    config: DataConfig, meta: dict, mask_paths: list[Path], where: str
) -> tuple[tuple[str, ...], MaskMapping]:
    """Class names and mask mapping from flags (first), the sidecar, or the masks themselves."""
    names = config.class_names or meta.get("class_names")
    if meta.get("palette") and not config.mask_values:
        values = tuple(tuple(c) for c in meta["palette"])
        ignore = tuple(tuple(c) for c in meta.get("ignore_colors", ()))
    else:
        values = config.mask_values or meta.get("mask_values")
        ignore = tuple(config.ignore_values or meta.get("ignore_values", ()))
        if values is None and names is not None:
            values = tuple(range(len(names)))  # index masks: value i is class i
        if values is None:
            found = [v for v in scan_mask_values(mask_paths) if v not in ignore]
            values = tuple(found)
            logger.warning(
                "%s: no class mapping given (flags or %s); using the mask values found, %s, "
                "as classes in that order", where, SIDECAR, found,
            )
    values = tuple(values)
    names = tuple(names) if names is not None else tuple(f"class_{v}" for v in values)
    if len(names) != len(values):
        raise DataError(
            f"{where}: {len(names)} class names {list(names)} but {len(values)} mask values "
            f"{list(values)}; give one mask value per class"
        )
    if len(values) < 2:
        raise DataError(f"{where}: found only mask values {list(values)}; need 2 or more classes")
    both = sorted(set(values) & set(ignore), key=str)
    if both:
        raise DataError(f"{where}: mask values {both} are both a class's and ignored "
                        f"(--ignore-values); a value is one or the other")
    if not meta.get("palette") or config.mask_values:
        big = [v for v in (*values, *ignore) if not 0 <= int(v) <= 255]
        if big:
            raise DataError(f"{where}: mask values {big} are outside 0..255; class masks are "
                            "8-bit (instance label images: instances:DIR)")
    return names, MaskMapping(values=values, ignore=ignore)


def load_folder(
    root: str, split: str | None, subset: str | None, config: DataConfig
) -> Source:
    """``folder:DIR``: DIR/images + DIR/masks (or labels), or DIR/<split>/images + masks.

    Class names and the mask mapping come from ``config`` (flags), else from
    ``DIR/dataset.json`` ({"class_names": [...], "mask_values": [...], "ignore_values": [...]}
    or {"palette": [[r, g, b], ...]} for colour masks), else from the values in the masks.
    """
    path = Path(root).expanduser()
    _require_dir(path, "folder dataset")
    splits = folder_splits(path)
    if not splits:
        raise DataError(
            f"{path} has neither images/ + masks/ (or {', '.join(MASK_DIRS[1:])}) subfolders "
            "nor split subfolders (e.g. train/images, train/masks)"
        )
    split = split or ("train" if "train" in splits else splits[0])
    if split not in splits:
        raise DataError(f"{path}: no split {split!r}; available splits: {splits}")
    dirs = _image_mask_dirs(path if split == ALL else path / split)
    pairs = match_pairs(*dirs)
    # one channel count for the whole split (training and validation subsets alike): a
    # gray first image does not turn a colour dataset gray
    channels = 1 if all(image_channels(image) == 1 for image, _ in pairs) else 3
    meta_path = path / SIDECAR
    meta = read_sidecar(meta_path) if meta_path.exists() else {}
    names, mapping = resolve_mapping(config, meta, [m for _, m in pairs], f"folder:{path}")
    pairs = select_pairs(pairs, subset, config, mapping, f"folder:{path} split {split}")
    return Source(
        examples=pairs_dataset(pairs, mapping, channels),
        class_names=names,
        channels=channels,
        size=len(pairs),
        description=f"folder:{path} split {split}" + (f" ({subset})" if subset else ""),
    )


def load_oxford_pets(
    root: str, split: str | None, subset: str | None, config: DataConfig
) -> Source:
    """``oxford-pets:DIR``: the Oxford-IIIT Pet archives (images/, annotations/trimaps/).

    Splits are named by ``annotations/trainval.txt`` and ``annotations/test.txt`` (either may
    be absent); the split "all" is every image that has a trimap.
    """
    path = Path(root).expanduser()
    _require_dir(path, "Oxford-IIIT Pet folder")
    image_dir, trimap_dir = path / "images", path / "annotations" / "trimaps"
    _require_dir(image_dir, "Oxford-IIIT Pet images folder")
    _require_dir(trimap_dir, "Oxford-IIIT Pet trimaps folder")
    available = [s for s in ("trainval", "test") if (path / "annotations" / f"{s}.txt").exists()]
    if split is None and available == ["test"]:
        raise DataError(f"{path}/annotations has test.txt but no trainval.txt: training on "
                        "the test split is refused; pass --split test (or all) to use it")
    split = split or (available[0] if available else ALL)
    images = list_images(image_dir)
    if split == ALL:
        names = sorted(set(images) & set(list_images(trimap_dir)))
    else:
        split_file = path / "annotations" / f"{split}.txt"
        if not split_file.exists():
            raise DataError(
                f"split file {split_file} is missing; available splits: {available + [ALL]}"
            )
        names = [
            line.split()[0]
            for line in split_file.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    pairs = []
    for name in names:
        if name not in images:
            raise DataError(f"{path}: image {name}.jpg listed in split {split} is missing")
        pairs.append((images[name], trimap_dir / f"{name}.png"))
    missing = [str(m) for _, m in pairs if not m.exists()]
    if missing:
        raise DataError(f"{len(missing)} trimaps are missing, first: {missing[0]}")
    pairs = seeded_subset(pairs, subset, config.validation_fraction, config.seed)
    if config.num_examples:
        pairs = pairs[: config.num_examples]
    pairs = check_pairs(pairs, OXFORD_MAPPING, config.skip_bad)
    return Source(
        examples=pairs_dataset(pairs, OXFORD_MAPPING, channels=3),
        class_names=OXFORD_CLASS_NAMES,
        channels=3,
        size=len(pairs),
        description=f"oxford-pets:{path} split {split}" + (f" ({subset})" if subset else ""),
    )
