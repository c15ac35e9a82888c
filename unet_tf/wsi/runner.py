"""Segment an image larger than memory block by block, in this process or on Dask.

:func:`segment_large` plans the blocks, runs each one (:func:`run_block`: read the block and
its context lazily, segment it with the image's tile grid, write its chunk of the class map,
and for instances keep the objects it owns), then for instances paints every block's ids
from the objects of it and its neighbours (global ids), and writes OME-Zarr. Memory grows
with the block size, not with the image. ``workers=N`` starts a local Dask cluster of N
processes; ``scheduler=ADDRESS`` uses a running ``distributed`` cluster. Each worker process
loads the model once.

Examples:
    >>> segment_large("nuclei", "slide.ome.tif", "slide.ome.zarr", instances=True,
    ...               workers=2)  # doctest: +SKIP
    {'blocks': 100, 'objects': 52311, ...}
"""

from __future__ import annotations

import csv
import functools
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.wsi.blocks import Region, TileGrid, blocks
from unet_tf.wsi.cluster import dask_client
from unet_tf.wsi.job import Job, check_out, start_work, table_path, to_uint8, write_ome_zarr
from unet_tf.wsi.objects import BlockObjects, paint
from unet_tf.wsi.readers import open_image

TABLE_FIELDS = ["id", "area", "centroid_y", "centroid_x", "bbox_top", "bbox_left",
                "bbox_bottom", "bbox_right"]


@functools.lru_cache(maxsize=2)
def _predictor(model: str, trusted: bool):
    """The model, loaded once per (worker) process."""
    from unet_tf.predictors import Predictor

    return Predictor.from_path(model, trusted=trusted)


@functools.lru_cache(maxsize=2)
def _image(path: str, level: int):
    return open_image(path, level)


def run_block(job: Job, index: tuple[int, int], region: Region) -> int:
    """Segment one block and write its results; returns its pixel count. Runs anywhere the
    model and the image can be read (a Dask worker too)."""
    import zarr

    done = job.work / "done" / f"{index[0]}_{index[1]}"
    if done.exists():
        return 0
    predictor, image = _predictor(job.model, job.trusted), _image(job.image, job.level)
    grid = TileGrid(job.shape, job.tile, job.overlap, job.multiple)
    area = region.grow(job.halo, job.shape) if job.instances else region
    probs = grid.probabilities(predictor.tile_probabilities, image.read, area,
                               job.num_classes, job.tile_batch)
    inner = (slice(region.top - area.top, region.bottom - area.top),
             slice(region.left - area.left, region.right - area.left))
    where = (slice(region.top, region.bottom), slice(region.left, region.right))
    zarr.open_array(job.work / "classes.zarr", mode="r+")[where] = np.argmax(
        probs[inner], axis=-1).astype(np.uint8)
    if job.probabilities:
        zarr.open_array(job.work / "probabilities.zarr", mode="r+")[(slice(None), *where)] = (
            to_uint8(probs[inner]))
    if job.instances:
        from unet_tf.wsi.objects import keep_owned

        labels = _separator(job)(probs)
        keep_owned(labels, area, region).save(job.work / "objects" / f"{index[0]}_{index[1]}.npz")
    done.touch()
    return region.shape[0] * region.shape[1]


def _separator(job: Job) -> Callable[[np.ndarray], np.ndarray]:
    from unet_tf.instances import object_separator

    predictor = _predictor(job.model, job.trusted)
    return object_separator(predictor.config, predictor.path, **dict(job.postprocess))


def segment_large(
    model: str | Path,
    image: str | Path,
    out: str | Path,
    instances: bool = False,
    *,
    level: int | None = None,
    block: int = 2048,
    halo: int = 64,
    tile: int = 512,
    overlap: int = 32,
    tile_batch: int = 4,
    probabilities: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    trusted: bool = False,
    progress: bool = True,
    **postprocess: Any,
) -> dict[str, Any]:
    """Segment ``image`` into ``out`` (``.ome.zarr``) block by block (module docstring).

    Args:
        model: a shipped model's name, a run folder or an exported model.
        image: the image; read lazily, ``level`` of its pyramid (default 0).
        out: the OME-Zarr output (``NAME.ome.zarr``); with ``instances`` the object table
            goes beside it (``NAME_objects.csv``). An unfinished job there resumes.
        instances: separate objects (an instance or 2-class model), else classes only.
        block: block side in pixels (one Zarr chunk each); memory grows with its square.
        halo: context (pixels) around each block for separating objects; wider than the
            largest object.
        tile, overlap, tile_batch: the tiling of :func:`unet_tf.tiling.predict_tiled`.
        probabilities: also write class probabilities (uint8, 0..255) as the image.
        workers: start a local Dask cluster of this many processes (None: this process).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``).
        overwrite: replace an existing output.
        trusted: see :meth:`unet_tf.Predictor.from_path`.
        progress: show a progress bar (blocks, megapixels per second, time left).
        **postprocess: ``interior_threshold``, ``foreground_threshold``, ``min_size``.

    Returns: a summary (image, shape, level, blocks, resumed, out, objects, table, seconds,
    megapixels_per_s).
    """
    check_out(Path(out), overwrite)  # before the model loads
    job = _plan(str(model), str(image), str(out), level, instances, trusted, postprocess,
                block=block, halo=halo, tile=tile, overlap=overlap, tile_batch=tile_batch,
                probabilities=probabilities)
    resumed = start_work(job, overwrite)
    start = time.perf_counter()
    plan = list(blocks(job.shape, block))
    _run_all(job, plan, workers, scheduler, progress)
    summary = {"image": str(image), "shape": list(job.shape), "level": job.level,
               "blocks": len(plan), "resumed": resumed, "out": str(out)}
    if instances:
        summary.update(_stitch(job, plan))
    write_ome_zarr(job)
    seconds = time.perf_counter() - start
    pixels = job.shape[0] * job.shape[1]
    return {**summary, "seconds": round(seconds, 2),
            "megapixels_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 3)}


def _plan(model: str, image: str, out: str, level: int | None, instances: bool,
          trusted: bool, postprocess: dict, **sizes: Any) -> Job:
    """The job's settings, checked before any block runs: the image opens, the model loads
    (and separates objects, for instances), the tiling and the halo fit."""
    from unet_tf.instances import object_separator

    source = open_image(image, level)
    predictor = _predictor(model, trusted)
    if instances:
        object_separator(predictor.config, predictor.path, **postprocess)  # or refuses
    if not 0 <= sizes["halo"] < sizes["block"]:
        raise ValueError(f"halo must be at least 0 and less than the block ({sizes['block']} "
                         f"px); got {sizes['halo']}")
    job = Job(model=model, image=image, out=out, shape=source.shape,
              num_classes=predictor.num_classes, class_names=tuple(predictor.class_names),
              multiple=predictor.multiple, level=source.level, instances=instances,
              trusted=trusted, **sizes,
              postprocess=tuple(sorted((k, v) for k, v in postprocess.items()
                                       if v is not None)))
    TileGrid(job.shape, job.tile, job.overlap, job.multiple)  # a bad tiling fails here
    return job


def _run_all(job, plan, workers, scheduler, progress) -> None:
    bar = _progress(len(plan), progress)
    try:
        if workers is None and scheduler is None:
            for index, region in plan:
                bar.update(run_block(job, index, region))
        else:
            with dask_client(workers, scheduler) as client:
                futures = client.map(run_block, [job] * len(plan), *zip(*plan, strict=True),
                                     pure=False)
                from distributed import as_completed

                for future in as_completed(futures):
                    bar.update(future.result())
    finally:
        bar.close()


class _progress:
    """tqdm over blocks, showing megapixels per second and the time left."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="block", disable=not enabled, desc="blocks")
        self.pixels, self.start = 0, time.perf_counter()

    def update(self, pixels: int) -> None:
        self.pixels += pixels
        rate = self.pixels / 1e6 / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{rate:.2f} MP/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _stitch(job: Job, plan: list[tuple[tuple[int, int], Region]]) -> dict[str, Any]:
    """Global ids: block by block, the objects of the block and its neighbours painted into
    the instances array, and the block's own objects added to the table beside the output.
    Blocks' objects are read as the painting reaches them (about three rows of blocks in
    memory), not all at once."""
    import zarr

    paths = {index: job.work / "objects" / f"{index[0]}_{index[1]}.npz" for index, _ in plan}
    first, next_id = {}, 1
    for index, _ in plan:  # ids in block order, then in each block's order
        first[index] = next_id
        next_id += BlockObjects.count(paths[index])
    columns = max(j for (_, j), _ in plan) + 1
    load = functools.lru_cache(maxsize=3 * columns + 3)(
        lambda index: BlockObjects.load(paths[index]))
    target = zarr.open_array(job.work / "instances.zarr", mode="r+")
    table = table_path(job.out)
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_FIELDS)
        writer.writeheader()
        for (i, j), region in plan:
            near = [(first[n], load(n)) for n in _neighbours(i, j) if n in paths]
            target[region.top:region.bottom, region.left:region.right] = paint(region, near)
            writer.writerows(obj.row(first[i, j] + k) for k, obj in enumerate(load((i, j)).objects))
    return {"objects": next_id - 1, "table": str(table)}


def _neighbours(i: int, j: int) -> Iterable[tuple[int, int]]:
    return [(i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]
