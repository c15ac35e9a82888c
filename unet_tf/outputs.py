"""Segment image files and write the results: masks, overlays, blurred photos, object
tables, one set per input image (what ``unet-tf predict``, ``blur`` and ``instances`` call).

Output names come from the input file names; two inputs with the same name (``a/00.png``
and ``b/00.png``) get their parent folder's name too. Every output is a plain file name
inside the output folder, never a path out of it, whatever the inputs' paths hold (``/``,
``..``, odd characters). Before anything is written, every input must be a readable image
file and no output may exist already, unless ``overwrite`` (``--overwrite``) is given; so a
bad command leaves the output folder as it was.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.imageio import MAX_PIXELS, read_image
from unet_tf.predictors import Predictor
from unet_tf.viz import overlay_with_legend, side_by_side

EXIF_ORIENTATION = 0x0112
MAX_STEM_BYTES = 160  # file systems allow 255 bytes per name; the suffixes need the rest
# the files each command writes per input image: stem + suffix ("{ext}": .jpg for JPEG
# photos, else .png)
OUTPUT_SUFFIXES = {
    "predict": ("_mask.png", "_overlay.png"),
    "blur": ("_blur{ext}", "_blur_figure.png"),
    "instances": ("_instances.png", "_overlay.png", "_objects.csv"),
}


def _file_name_part(text: str) -> str:
    """``text`` with anything but letters, digits, ``.``, ``-``, ``_`` replaced by ``_``
    and no leading dots: never a separator, ``..`` or a hidden file."""
    return re.sub(r"[^\w.-]+", "_", text).lstrip(".") or "_"


def output_stems(paths: Sequence[str | Path]) -> list[str]:
    """A distinct output stem per input path: a plain file name, never a path.

    The stem is the file's name without its suffix; where names collide (case-insensitively,
    as on macOS and Windows), the names of the folders that tell the files apart are added,
    taken from the absolute paths (so ``..`` is resolved and ``/`` never appears). A file
    given twice gets ``_1``, ``_2`` ... after its second and later stems.

    Examples:
        >>> output_stems(["a/00.png", "b/00.png", "c/cat.jpg"])
        ['a_00', 'b_00', 'cat']
        >>> output_stems(["/x/00.png", "/y/x/00.png", "/x/00.png", "../my photo.jpg"])
        ['x_00', 'y_x_00', 'x_00_1', 'my_photo']
    """
    absolute = [Path(os.path.abspath(p)) for p in paths]
    unique = list(dict.fromkeys(absolute))
    folders = [[_file_name_part(part) for part in p.parent.relative_to(p.anchor).parts]
               for p in unique]
    names = [_file_name_part(p.stem) for p in unique]
    stems = list(names)
    for depth in range(1, max(map(len, folders), default=0) + 1):
        counts = Counter(s.casefold() for s in stems)
        if len(counts) == len(stems):
            break
        stems = ["_".join([*f[-depth:], name]) if counts[s.casefold()] > 1 else s
                 for f, name, s in zip(folders, names, stems, strict=True)]
    stem_of, seen = dict(zip(unique, stems, strict=True)), Counter()
    stems = []
    for path in absolute:
        stems.append(f"{stem_of[path]}_{seen[path]}" if seen[path] else stem_of[path])
        seen[path] += 1
    # long folder names: keep the end (the file's own name), within MAX_STEM_BYTES
    stems = [s.encode()[-MAX_STEM_BYTES:].decode(errors="ignore").lstrip(".") or "_"
             for s in stems]
    if len({s.casefold() for s in stems}) < len(stems):  # rare: A/x.png and a/x.png, ...
        stems = [f"{i}_{s}" for i, s in enumerate(stems)]
    return stems


def check_inputs(paths: Sequence[str | Path]) -> None:
    """Make sure every input is an image file that can be read, before anything is written.

    Only the file's header is read (Pillow's ``Image.open``), so this is quick; a file
    damaged further in still fails when it is segmented.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a path is a folder, not a regular file, or not an image Pillow reads.

    Examples:
        >>> check_inputs(["cat.jpg", "dog.png"])  # doctest: +SKIP
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS)  # as read_image
    if not paths:
        raise ValueError("no input images given; pass one or more image files")
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; nothing was written")
        if path.is_dir():
            raise ValueError(f"{path} is a folder; pass image files")
        if not path.is_file():
            raise ValueError(f"{path} is not a regular file; pass image files")
        try:
            with Image.open(path):
                pass
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ValueError(f"{path}: not a readable image ({exc}); nothing was written"
                             ) from exc


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (it is created if missing)")


def output_file(out: Path, name: str) -> Path:
    """``out / name``, after making sure it resolves to a file directly inside ``out``
    (a symbolic link to elsewhere is refused too).

    Raises:
        ValueError: the path would lead out of ``out``.
    """
    path = out / name
    if os.sep in name or (os.altsep and os.altsep in name) or name in (".", ".."):
        raise ValueError(f"output name {name!r} is not a plain file name")
    resolved = path.resolve()
    if resolved.parent != out.resolve():
        raise ValueError(
            f"{path} would be written to {resolved}, outside --out {out}; remove that link "
            "or choose another --out"
        )
    return path


def plan_outputs(
    command: str, paths: Sequence[str | Path], out_dir: str | Path, overwrite: bool = False
) -> list[dict[str, Path]]:
    """Check inputs and outputs before anything is written; the files each input gets.

    Args:
        command: ``"predict"``, ``"blur"`` or ``"instances"`` (:data:`OUTPUT_SUFFIXES`).
        paths: the input images.
        out_dir: the output folder (it may not exist yet).
        overwrite: replace outputs of an earlier run instead of refusing.

    Returns:
        One ``{suffix: path}`` per input, in :data:`OUTPUT_SUFFIXES` order.

    Raises:
        FileNotFoundError: an input does not exist.
        FileExistsError: an output exists and ``overwrite`` is False.
        ValueError: an input is no readable image, ``out_dir`` is a file, or an output
            would leave ``out_dir`` or replace an input.

    Examples:
        >>> plan_outputs("predict", ["cat.jpg"], "out")  # doctest: +SKIP
        [{'_mask.png': PosixPath('out/cat_mask.png'), ...}]
    """
    out = Path(out_dir)
    check_inputs(paths)
    _check_out_dir(out)
    inputs = {Path(p).resolve() for p in paths}
    plans = []
    for path, stem in zip(paths, output_stems(paths), strict=True):
        ext = ".jpg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else ".png"
        plan = {suffix: output_file(out, stem + suffix.format(ext=ext))
                for suffix in OUTPUT_SUFFIXES[command]}
        for target in plan.values():
            if target.resolve() in inputs:
                raise ValueError(f"{target} is also an input image; choose another --out")
            if not overwrite and (target.exists() or target.is_symlink()):
                raise FileExistsError(
                    f"{target} exists (an earlier run's output?); pass --overwrite "
                    "(overwrite=True) to replace it, or choose another --out")
        plans.append(plan)
    return plans


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    overwrite: bool = False,
    **predict_options,
) -> list[dict[str, Any]]:
    """Segment image files; write ``NAME_mask.png`` and ``NAME_overlay.png`` for each.

    ``NAME_mask.png`` is a single-channel PNG of class indices at the photo's own (upright)
    size; ``NAME_overlay.png`` shows the classes in colour with a legend. Inputs and outputs
    are checked first (:func:`plan_outputs`): existing outputs are replaced only with
    ``overwrite``.

    Returns:
        One entry per image: its path, size, written files and the fraction of each class.

    Examples:
        >>> predict_files(Predictor.from_path("run"), ["cat.jpg"], "out")  # doctest: +SKIP
    """
    from PIL import Image

    plans = plan_outputs("predict", paths, out_dir, overwrite)
    make_output_dir(Path(out_dir))
    results = []
    for path, plan in zip(paths, plans, strict=True):
        image = read_image(path)
        mask = predictor.predict(image, **predict_options)
        mask_path, overlay_path = plan["_mask.png"], plan["_overlay.png"]
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
    overwrite: bool = False,
    **predict_options,
) -> list[dict[str, Any]]:
    """Blur the background of photos; write ``NAME_blur.EXT`` and ``NAME_blur_figure.png``.

    The result keeps the photo's own (upright) size and, for JPEGs, its EXIF data with the
    orientation reset (its pixels are already upright). The figure shows the photo, the
    soft mask and the result side by side. Inputs and outputs are checked first
    (:func:`plan_outputs`): existing outputs are replaced only with ``overwrite``. The
    thresholds and ``min_size`` stored with the model (``unet-tf tune``) apply unless given.

    Returns:
        One entry per photo: its path, size and the files written.

    Examples:
        >>> blur_files(predictor, ["cat.jpg"], "out", keep=["pet"])  # doctest: +SKIP
    """
    from PIL import Image

    from unet_tf.apps.blur import blur_background, keep_indices

    keep_indices(keep, predictor.class_names)  # a wrong class name first: nothing is written
    plans = plan_outputs("blur", paths, out_dir, overwrite)
    make_output_dir(Path(out_dir))
    results = []
    for path, plan in zip(paths, plans, strict=True):
        path = Path(path)
        image = read_image(path)
        result, alpha = blur_background(image, predictor, keep, strength, feather,
                                        return_mask=True, **predict_options)
        jpeg = path.suffix.lower() in (".jpg", ".jpeg")
        target = plan["_blur{ext}"]
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
        figure = plan["_blur_figure.png"]
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
    overwrite: bool = False,
    interior_threshold: float | None = None,
    foreground_threshold: float | None = None,
    **predict_options,
) -> list[dict[str, Any]]:
    """Separate objects in images; write ``NAME_instances.png``, ``NAME_overlay.png`` and
    ``NAME_objects.csv`` (area, centroid, mean probability per object) for each.

    A 3-class model (background, interior, boundary: trained on ``instances:`` data) gets
    the seeded watershed of :func:`unet_tf.instances.label`; a 2-class model (background,
    foreground) connected components; any other model is refused
    (:func:`unet_tf.instances.object_separator`). Inputs and outputs are checked first
    (:func:`plan_outputs`): existing outputs are replaced only with ``overwrite``. The
    thresholds and ``min_size`` stored with the model (``unet-tf tune``) apply unless given.

    Examples:
        >>> instance_files(Predictor.from_path("run"), ["cells.png"], "out")  # doctest: +SKIP
    """
    from unet_tf.instances import object_separator, write_outputs

    separate = object_separator(  # refuses other models; the stored settings unless given
        predictor.config, predictor.path, min_size=min_size,
        interior_threshold=interior_threshold, foreground_threshold=foreground_threshold)
    plan_outputs("instances", paths, out_dir, overwrite)
    out = Path(out_dir)
    make_output_dir(out)
    results = []
    for path, stem in zip(paths, output_stems(paths), strict=True):  # the names planned
        image = read_image(path)
        _, probabilities = predictor.predict(image, return_probabilities=True,
                                             **predict_options)
        objects = separate(probabilities)
        written = write_outputs(image, objects, probabilities, out, stem)
        results.append({"image": str(path), "objects": len(written["rows"]),
                         "instances": str(written["instances"]),
                         "overlay": str(written["overlay"]), "table": str(written["objects"])})
    return results


def make_output_dir(out: Path) -> None:
    """Create the output folder, or say clearly why it cannot be."""
    _check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
