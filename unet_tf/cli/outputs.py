"""Files the commands write: masks, overlays, blurred photos, one set per input image.

Output names come from the input file names; two inputs with the same name (``a/00.png``
and ``b/00.png``) get their parent folder's name too, so no output is overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.imageio import read_image
from unet_tf.predictors import Predictor
from unet_tf.viz import overlay_with_legend, side_by_side

EXIF_ORIENTATION = 0x0112


def output_stems(paths: Sequence[str | Path]) -> list[str]:
    """A distinct output stem per input path (parent folders added where names collide).

    Example:
        >>> output_stems(["a/00.png", "b/00.png", "c/cat.jpg"])
        ['a_00', 'b_00', 'cat']
    """
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    depth = 1
    while len(set(stems)) < len(stems) and depth < 8:
        counts = {s: stems.count(s) for s in stems}
        stems = [
            "_".join([*p.parent.parts[-depth:], p.stem]) if counts[s] > 1 else s
            for p, s in zip(paths, stems, strict=True)
        ]
        depth += 1
    if len(set(stems)) < len(stems):  # the same file given twice
        stems = [f"{s}_{i}" for i, s in enumerate(stems)]
    return stems


def predict_files(
    predictor: Predictor, paths: Sequence[str | Path], out_dir: str | Path, **predict_options
) -> list[dict[str, Any]]:
    """Segment image files; write ``NAME_mask.png`` and ``NAME_overlay.png`` for each.

    ``NAME_mask.png`` is a single-channel PNG of class indices at the photo's own (upright)
    size; ``NAME_overlay.png`` shows the classes in colour with a legend.

    Returns:
        One entry per image: its path, size, written files and the fraction of each class.

    Example:
        >>> predict_files(Predictor.from_path("run"), ["cat.jpg"], "out")  # doctest: +SKIP
    """
    from PIL import Image

    out = Path(out_dir)
    make_output_dir(out)
    results = []
    for path, stem in zip(paths, output_stems(paths), strict=True):
        image = read_image(path)
        mask = predictor.predict(image, **predict_options)
        mask_path, overlay_path = out / f"{stem}_mask.png", out / f"{stem}_overlay.png"
        Image.fromarray(mask).save(mask_path)
        Image.fromarray(overlay_with_legend(image, mask, predictor.class_names)).save(
            overlay_path)
        counts = np.bincount(mask.ravel(), minlength=predictor.num_classes)
        results.append({
            "image": str(path),
            "size": [int(mask.shape[0]), int(mask.shape[1])],
            "mask": str(mask_path),
            "overlay": str(overlay_path),
            "fractions": {n: round(float(c) / mask.size, 4)
                          for n, c in zip(predictor.class_names, counts, strict=True)},
        })
    return results


def blur_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    keep: Sequence[str | int] | str,
    strength: float = 0.02,
    feather: float = 0.01,
    **predict_options,
) -> list[dict[str, Any]]:
    """Blur the background of photos; write ``NAME_blur.EXT`` and ``NAME_blur_figure.png``.

    The result keeps the photo's own (upright) size and, for JPEGs, its EXIF data with the
    orientation reset (its pixels are already upright). The figure shows the photo, the
    soft mask and the result side by side.

    Returns:
        One entry per photo: its path, size and the files written.

    Example:
        >>> blur_files(predictor, ["cat.jpg"], "out", keep=["pet"])  # doctest: +SKIP
    """
    from PIL import Image

    from unet_tf.apps.blur import blur_background

    out = Path(out_dir)
    make_output_dir(out)
    results = []
    for path, stem in zip(paths, output_stems(paths), strict=True):
        path = Path(path)
        image = read_image(path)
        result, alpha = blur_background(image, predictor, keep, strength, feather,
                                        return_mask=True, **predict_options)
        jpeg = path.suffix.lower() in (".jpg", ".jpeg")
        target = out / f"{stem}_blur{'.jpg' if jpeg else '.png'}"
        options: dict[str, Any] = {}
        with Image.open(path) as original:
            exif = original.getexif()
        if jpeg:
            options["quality"] = 95
            if exif:
                if EXIF_ORIENTATION in exif:
                    exif[EXIF_ORIENTATION] = 1  # pixels are upright now
                options["exif"] = exif.tobytes()
        Image.fromarray(result).save(target, **options)
        figure = out / f"{stem}_blur_figure.png"
        Image.fromarray(side_by_side([image, alpha, result], ["photo", "mask (kept)",
                                                              "background blurred"])).save(figure)
        results.append({"image": str(path), "size": [int(v) for v in result.shape[:2]],
                        "result": str(target), "figure": str(figure)})
    return results


def instance_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    min_size: int | None = None,
    **predict_options,
) -> list[dict[str, Any]]:
    """Separate objects in images; write ``NAME_instances.png``, ``NAME_overlay.png`` and
    ``NAME_objects.csv`` (area, centroid, mean probability per object) for each.

    A 3-class model (background, interior, boundary: trained on ``instances:`` data) gets
    the seeded watershed of :func:`unet_tf.instances.label`; a 2-class model (background,
    foreground) connected components.

    Example:
        >>> instance_files(Predictor.from_path("run"), ["cells.png"], "out")  # doctest: +SKIP
    """
    from unet_tf.instances import INSTANCE_CLASS_NAMES, label, semantic_label, write_outputs

    if predictor.num_classes not in (2, 3):
        raise ValueError(
            f"{predictor.path}: separating objects needs a model of background / interior / "
            f"boundary ({', '.join(INSTANCE_CLASS_NAMES)}: trained on instances:DIR data) or "
            f"background / foreground; this one has classes {list(predictor.class_names)}"
        )
    separate = label if predictor.num_classes == 3 else semantic_label
    options = {} if min_size is None else {"min_size": min_size}
    out = Path(out_dir)
    make_output_dir(out)
    results = []
    for path, stem in zip(paths, output_stems(paths), strict=True):
        image = read_image(path)
        _, probabilities = predictor.predict(image, return_probabilities=True,
                                             **predict_options)
        objects = separate(probabilities, **options)
        written = write_outputs(image, objects, probabilities, out, stem)
        results.append({"image": str(path), "objects": len(written["rows"]),
                         "instances": str(written["instances"]),
                         "overlay": str(written["overlay"]), "table": str(written["objects"])})
    return results


def make_output_dir(out: Path) -> None:
    """Create the output folder, or say clearly why it cannot be."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
