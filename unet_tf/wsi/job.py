"""A whole-slide job's settings and its output folder: work arrays that survive a killed job,
then OME-Zarr (NGFF) with multiscale levels and label metadata, and a CSV of the objects.

While a job runs, ``OUT.ome.zarr/.work/`` holds ``job.json`` (the settings), the level-0
arrays written block by block (``classes``, ``probabilities``, ``instances``; one Zarr chunk
per block, so blocks never write the same chunk) and one marker per finished block. A job
started again with the same settings skips the finished blocks. At the end
:func:`write_ome_zarr` writes the OME-Zarr image and labels with ``ome-zarr-py`` (which reads
the work arrays chunk by chunk through Dask) and removes ``.work``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORK = ".work"
MIN_LEVEL_SIDE = 128  # pyramid levels stop before an image side gets smaller than this


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to segment one block (plain values: it travels to Dask
    workers by pickle, and is stored as ``job.json`` to recognise a job to resume)."""

    model: str
    image: str
    out: str
    shape: tuple[int, int]
    num_classes: int
    class_names: tuple[str, ...]
    multiple: int
    level: int = 0
    block: int = 2048
    halo: int = 64
    tile: int = 512
    overlap: int = 32
    tile_batch: int = 4
    instances: bool = False
    probabilities: bool = False
    postprocess: tuple[tuple[str, float], ...] = ()
    trusted: bool = False

    @property
    def work(self) -> Path:
        return Path(self.out) / WORK

    def settings(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an output that is not a ``.zarr`` path, or one that exists (a finished job)
    unless ``overwrite``; an unfinished job's folder is left for :func:`start_work` to resume."""
    if not out.name.endswith(".zarr"):
        raise ValueError(f"--out {out}: whole-slide outputs are OME-Zarr folders; end the "
                         "path with .ome.zarr (e.g. slide_labels.ome.zarr)")
    if out.exists() and not (out / WORK / "job.json").exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")


def start_work(job: Job, overwrite: bool) -> bool:
    """Create the work arrays, or find those of the same job; True when resuming."""
    import zarr

    out, work = Path(job.out), job.work
    check_out(out, overwrite)
    stored = work / "job.json"
    if stored.exists() and not overwrite:
        if json.loads(stored.read_text()) == job.settings():
            return True
        raise FileExistsError(f"{out} holds an unfinished job with other settings (see "
                              f"{stored}); pass --overwrite to start again")
    if out.exists():
        shutil.rmtree(out)
    (work / "done").mkdir(parents=True)
    chunks = (job.block, job.block)
    zarr.create_array(work / "classes.zarr", shape=job.shape, chunks=chunks, dtype="uint8")
    if job.probabilities:
        zarr.create_array(work / "probabilities.zarr", shape=(job.num_classes, *job.shape),
                          chunks=(job.num_classes, *chunks), dtype="uint8")
    if job.instances:
        (work / "objects").mkdir()
        zarr.create_array(work / "instances.zarr", shape=job.shape, chunks=chunks,
                          dtype="uint32")
    stored.write_text(json.dumps(job.settings(), indent=1) + "\n")
    return False


def scale_factors(shape: tuple[int, int]) -> list[int]:
    """Downsampling factors of the pyramid: x2 per level while the smaller side stays >= 128.

    Examples:
        >>> scale_factors((20000, 30000)), scale_factors((300, 300))
        ([2, 4, 8, 16, 32, 64, 128], [2])
    """
    factors, f = [], 2
    while min(shape) // f >= MIN_LEVEL_SIDE:
        factors.append(f)
        f *= 2
    return factors


def write_ome_zarr(job: Job) -> None:
    """The work arrays -> OME-Zarr: the image (probabilities as uint8 [c, y, x], or the class
    map [y, x]) and labels ``classes`` or ``instances``, each with its pyramid."""
    import dask.array as da
    import zarr
    from ome_zarr.writer import write_image, write_label_metadata, write_labels

    work = job.work
    for old in Path(job.out).iterdir():  # what a job killed while writing them left
        if old.name != WORK:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    root = zarr.open_group(job.out, mode="a")
    factors = scale_factors(job.shape)
    chunks = {"chunks": (job.block, job.block)}
    classes = da.from_zarr(str(work / "classes.zarr"))
    if job.probabilities:
        probs = da.from_zarr(str(work / "probabilities.zarr"))
        write_image(probs, root, scale_factors=factors, axes="cyx", name="probabilities",
                    storage_options={"chunks": (job.num_classes, job.block, job.block)})
    else:
        write_image(classes, root, scale_factors=factors, axes="yx", name="classes",
                    storage_options=chunks)
    name = "instances" if job.instances else "classes"
    data = da.from_zarr(str(work / "instances.zarr")) if job.instances else classes
    write_labels(data, root, name=name, scaler=None, scale_factors=factors, axes="yx",
                 storage_options=chunks)
    # "source" lets readers (napari-ome-zarr, ome-zarr-py) find the image the labels belong to
    metadata = {"source": {"image": "../../"}}
    if not job.instances:
        metadata["colors"] = [{"label-value": i, "rgba": _colour(i)}
                              for i in range(job.num_classes)]
        metadata["properties"] = [{"label-value": i, "class": n}
                                  for i, n in enumerate(job.class_names)]
    write_label_metadata(root["labels"], name, **metadata)
    shutil.rmtree(work)


def _colour(index: int) -> list[int]:
    import matplotlib

    r, g, b, _ = matplotlib.colormaps["tab10"](index % 10)
    return [int(255 * r), int(255 * g), int(255 * b), 0 if index == 0 else 255]


def table_path(out: str | Path) -> Path:
    """``NAME.ome.zarr`` -> ``NAME.csv`` beside it: the instance table."""
    out = Path(out)
    stem = out.name[:-len(".ome.zarr")] if out.name.endswith(".ome.zarr") else out.stem
    return out.with_name(stem + "_objects.csv")


def to_uint8(probabilities: np.ndarray) -> np.ndarray:
    """Float probabilities [h, w, K] -> uint8 [K, h, w] (0..255)."""
    return np.moveaxis(np.round(probabilities * 255), -1, 0).astype(np.uint8)
