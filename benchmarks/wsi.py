"""Whole-slide images: segment generated 5k-20k px slides block by block; time, peak memory.

For every side N it writes an N x N RGB tiled TIFF (512 px tiles, uncompressed, with a half-size
pyramid level; nucleus-like discs on coloured noise) tile by tile, never whole in memory, and
keeps it in ``benchmarks/data/wsi/`` (git-ignored) for the next run. It saves an untrained
preset U-Net as a run folder (untrained weights segment just as fast) and runs
:func:`unet_tf.wsi.segment_large` on every case in a fresh subprocess, so that the peak
resident memory (``VmHWM``) is the case's own: that of the process, plus, with Dask workers,
that of every process it started (the workers), polled while it runs and summed; the record
says which processes were summed. One record per case in ``benchmarks/results/wsi.jsonl``:
side, megapixels, workers, block / halo / tile, seconds (blocks to finished OME-Zarr, the
model load left out; ``wall_seconds`` has it all), megapixels per second, peak RSS.

Cases: semantic segmentation of every side in one process (no Dask); objects at the sides
of ``--instances`` (the shipped ``nuclei`` model, its stored test-time augmentation off);
with ``--workers 1,2`` last the largest side on a local Dask cluster of 2 worker processes.

``--figure`` writes ``docs/wsi_stitching.png`` instead: the shipped ``nuclei`` model on a
mosaic of DSB 2018 images (``../shared/data/dsb2018_nuclei``; synthetic discs when it is
absent) in small blocks, a crop around a block corner with the block borders drawn, each
object one colour and one id across them.

Usage (from the repository root):
``python -m benchmarks wsi [--sizes 5000,10000,20000] [--workers 1,2] [--instances 10000]
[--preset tiny] [--figure]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import ROOT, peak_rss_mib, record

DATA = ROOT / "benchmarks" / "data" / "wsi"  # git-ignored: generated slides, model, outputs
FIGURE = ROOT / "docs" / "wsi_stitching.png"
SHARED_DATA = ROOT.parent / "shared" / "data"
TIFF_TILE = 512  # the slide's TIFF tiles; a power of two, as scanners write them
DISC_AREA = 1600  # one disc per this many pixels: about the density of DSB 2018 nuclei
SEED = 0
# segment_large's settings measured (its defaults)
BLOCK, HALO, TILE, OVERLAP, TILE_BATCH = 2048, 64, 512, 32, 4
POLL_SECONDS = 0.5  # how often the children's peak memory is read


# ---------------------------------------------------------------------------- the slide


def disc_list(side: int, seed: int = SEED) -> np.ndarray:
    """Discs (cy, cx, radius, brightness) spread over an image of ``side`` px, float32 [n, 4];
    a few MB even at 20,000 px."""
    rng = np.random.default_rng([seed, side])
    n = side * side // DISC_AREA
    return np.stack([rng.uniform(0, side, n), rng.uniform(0, side, n), rng.uniform(5, 12, n),
                     rng.uniform(110, 230, n)], axis=1).astype(np.float32)


class SlideTiles:
    """The tiles of the generated slide, each made on demand from the disc list (so the slide
    is the same whichever tile is made first, and never whole in memory)."""

    def __init__(self, side: int, seed: int = SEED):
        self.side, self.seed = side, seed
        self.discs = disc_list(side, seed)
        # discs by the tile their centre lies in: a tile draws those of itself and neighbours
        # (a radius is far below a tile)
        cells = (self.discs[:, :2] // TIFF_TILE).astype(np.int64)
        self.count = -(-side // TIFF_TILE)
        key = cells[:, 0] * self.count + cells[:, 1]
        order = np.argsort(key, kind="stable")
        self.discs, key = self.discs[order], key[order]
        self.starts = np.searchsorted(key, np.arange(self.count * self.count + 1))

    def near(self, i: int, j: int) -> np.ndarray:
        found = [self.discs[self.starts[a * self.count + b]:self.starts[a * self.count + b + 1]]
                 for a in range(max(i - 1, 0), min(i + 2, self.count))
                 for b in range(max(j - 1, 0), min(j + 2, self.count))]
        return np.concatenate(found)

    def tile(self, i: int, j: int) -> np.ndarray:
        """Tile (i, j) of level 0, uint8 [TIFF_TILE, TIFF_TILE, 3] (zeros past the edge)."""
        rng = np.random.default_rng([self.seed, self.side, i, j])
        top, left = i * TIFF_TILE, j * TIFF_TILE
        # dark, slightly coloured background noise
        pixels = rng.normal([18, 14, 24], 6, (TIFF_TILE, TIFF_TILE, 3)).astype(np.float32)
        for cy, cx, r, bright in self.near(i, j):
            y0, y1 = max(int(cy - r) - 1, top), min(int(cy + r) + 2, top + TIFF_TILE)
            x0, x1 = max(int(cx - r) - 1, left), min(int(cx + r) + 2, left + TIFF_TILE)
            if y1 <= y0 or x1 <= x0:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            # anti-aliased edge; later discs cover earlier ones
            cover = np.clip(r - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) + 0.5, 0, 1)[..., None]
            view = pixels[y0 - top:y1 - top, x0 - left:x1 - left]
            view *= 1 - cover
            view += cover * bright * np.array([0.92, 0.95, 1.0], np.float32)
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        pixels[max(self.side - top, 0):] = 0
        pixels[:, max(self.side - left, 0):] = 0
        return pixels

    def level0(self):
        for i in range(self.count):
            for j in range(self.count):
                yield self.tile(i, j)

    def level1(self):
        """Half size: each tile from 2 x 2 tiles of level 0, every second pixel."""
        count = -(-self.side // 2 // TIFF_TILE)
        for i in range(count):
            for j in range(count):
                quad = np.zeros((2 * TIFF_TILE, 2 * TIFF_TILE, 3), np.uint8)
                for a in range(2):
                    for b in range(2):
                        if 2 * i + a < self.count and 2 * j + b < self.count:
                            quad[a * TIFF_TILE:(a + 1) * TIFF_TILE,
                                 b * TIFF_TILE:(b + 1) * TIFF_TILE] = self.tile(2 * i + a,
                                                                                2 * j + b)
                yield quad[::2, ::2]


def slide(side: int) -> Path:
    """The generated slide of ``side`` px, written once (tile by tile) and then reused."""
    import tifffile

    path = DATA / f"slide_{side}.ome.tif"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    tiles = SlideTiles(side)
    partial = path.with_name(f"partial_{path.name}")
    start = time.perf_counter()
    options = {"tile": (TIFF_TILE, TIFF_TILE), "photometric": "rgb", "dtype": np.uint8}
    with tifffile.TiffWriter(partial, ome=True, bigtiff=True) as tif:
        tif.write(tiles.level0(), shape=(side, side, 3), subifds=1, **options)
        tif.write(tiles.level1(), shape=(side // 2, side // 2, 3), subfiletype=1, **options)
    partial.replace(path)  # a killed run leaves no slide that looks finished
    print(f"wrote {path.relative_to(ROOT)} ({side} x {side}, "
          f"{time.perf_counter() - start:.0f} s)", flush=True)
    return path


def save_model(preset: str) -> Path:
    """An untrained ``preset`` U-Net (3 classes) saved as a run folder."""
    import keras

    import unet_tf
    from unet_tf import RunInfo
    from unet_tf.data import PREPROCESSING

    run = DATA / f"model_{preset}"
    if (run / "config.json").exists():
        return run
    keras.utils.set_random_seed(SEED)
    config = unet_tf.model_preset(preset, num_classes=3)
    partial = run.with_name(run.name + "_partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    unet_tf.build_unet(config).save(partial / "model.keras")
    RunInfo(config, ("background", "a", "b"), (256, 256),
            {**PREPROCESSING, "resolution": "native"}).save(partial)
    partial.replace(run)
    return run


def nuclei_without_tta() -> Path:
    """The shipped ``nuclei`` run with its stored test-time augmentation turned off: its
    config asks for all 8 flips and rotations, 8 times the model's work, and
    :func:`unet_tf.wsi.segment_large` has no switch for it."""
    run = DATA / "nuclei_no_tta"
    if (run / "config.json").exists():
        return run
    partial = run.with_name(run.name + "_partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(ROOT / "saved_models" / "nuclei", partial)
    config = json.loads((partial / "config.json").read_text())
    config["postprocess"]["tta"] = False
    (partial / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    partial.replace(run)
    return run


# ---------------------------------------------------------------------------- one case


class PeakMemory:
    """Peak resident memory of this process and of every process it starts (Dask workers),
    read from /proc every ``POLL_SECONDS`` in a thread: ``VmHWM`` only grows, so the last
    reading before a child exits is its peak (workers idle after their last block)."""

    def __init__(self):
        self.children: dict[int, tuple[str, float]] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def _poll(self) -> None:
        while True:
            for pid in _descendants(os.getpid()):
                peak = _proc_mib(pid, "VmHWM")
                if peak is not None:
                    old = self.children.get(pid, ("", 0.0))
                    self.children[pid] = (old[0] or _process_kind(pid), max(old[1], peak))
            if self.stopped.wait(POLL_SECONDS):
                return

    def summary(self) -> dict:
        own = round(peak_rss_mib(), 1)
        processes = [{"process": "main", "peak_rss_mib": own}]
        processes += [{"process": kind, "peak_rss_mib": round(mib, 1)}
                      for kind, mib in self.children.values()]
        return {"peak_rss_mib": round(sum(p["peak_rss_mib"] for p in processes), 1),
                "peak_rss_largest_process_mib": max(p["peak_rss_mib"] for p in processes),
                "processes": processes}


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the parent is the 2nd field after the command name (which may hold spaces)
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _proc_mib(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _process_kind(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "child"
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    if "spawn_main" in command or "forkserver" in command:
        return "dask worker"
    words = command.split() or ["?"]
    return "child: " + " ".join([Path(words[0]).name, *words[1:3]])[:60]


def run_case(case: dict) -> None:
    """One case, in this (fresh) process; the result goes to ``case["result"]`` as JSON."""
    from unet_tf.wsi import segment_large

    out = Path(case["out"])
    start = time.perf_counter()
    with PeakMemory() as memory:
        summary = segment_large(case["model"], case["image"], out, case["instances"],
                                block=case["block"], halo=case["halo"], tile=case["tile"],
                                overlap=case["overlap"], tile_batch=case["tile_batch"],
                                workers=case["workers"], overwrite=True, progress=True)
    wall = time.perf_counter() - start
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    result = {"seconds": summary["seconds"], "wall_seconds": round(wall, 1),
              "blocks": summary["blocks"], "objects": summary.get("objects"),
              "output_mib": round(size / 2**20, 1), **memory.summary()}
    Path(case["result"]).write_text(json.dumps(result))


def in_subprocess(case: dict) -> dict:
    """Run ``case`` in a fresh Python (its own peak memory); its output is removed after."""
    result = DATA / "result.json"
    result.unlink(missing_ok=True)
    out = Path(case["out"])
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "benchmarks", "wsi", "--case",
                           json.dumps({**case, "result": str(result)})], cwd=ROOT, check=False)
    if done.returncode != 0 or not result.exists():
        raise SystemExit(f"case {case['name']} failed (exit {done.returncode})")
    shutil.rmtree(out, ignore_errors=True)
    for table in out.parent.glob(f"{case['name']}*.csv"):
        table.unlink()
    return json.loads(result.read_text())


# ---------------------------------------------------------------------------- the figure


def mosaic(parts: int = 2, size: int = 256) -> tuple[np.ndarray, str]:
    """``parts`` x ``parts`` crops (``size`` px) of the densest DSB 2018 images, or synthetic
    discs where the data set is absent; and what it is."""
    from PIL import Image

    folder = SHARED_DATA / "dsb2018_nuclei"
    if not (folder / "images").is_dir():
        print(f"{folder} is absent: the figure uses synthetic discs", file=sys.stderr)
        tiles = SlideTiles(parts * size, seed=1)
        image = next(tiles.level0())[:parts * size, :parts * size]
        return image, "synthetic discs (dsb2018_nuclei absent)"
    counts = []
    for path in sorted((folder / "instances").glob("*.png")):
        ids = np.asarray(Image.open(path))
        if min(ids.shape) >= size:
            counts.append((-len(np.unique(ids)), path.name))
    chosen = [name for _, name in sorted(counts)[:parts * parts]]
    crops = []
    for name in chosen:
        image = np.asarray(Image.open(folder / "images" / name).convert("RGB"))
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crops.append(image[top:top + size, left:left + size])
    rows = [np.concatenate(crops[r * parts:(r + 1) * parts], 1) for r in range(parts)]
    return np.concatenate(rows, 0), f"dsb2018_nuclei: {', '.join(chosen)}"


def id_colours(labels: np.ndarray) -> np.ndarray:
    """One colour per id, far apart for consecutive ids (golden-ratio hues), float [H, W, 3]."""
    import matplotlib.colors

    ids = np.unique(labels)
    hues = (ids * 0.618034) % 1.0
    palette = matplotlib.colors.hsv_to_rgb(np.stack([hues, np.full_like(hues, 0.75),
                                                     np.full_like(hues, 1.0)], 1))
    palette[ids == 0] = 0
    return palette[np.searchsorted(ids, labels)]


def figure(block: int = 128, halo: int = 64, crop: int = 200, piece: int = 256) -> Path:
    """The stitched objects around a block corner: ``docs/wsi_stitching.png``. The blocks are
    half a mosaic piece, so a block corner lies in the middle of every piece and the crop
    around it shows one image, not the seams between them."""
    import tifffile
    import zarr
    from scipy import ndimage

    from unet_tf.viz import _pyplot
    from unet_tf.wsi import segment_large

    image, source = mosaic(2, piece)
    work = DATA / "figure"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = work / "mosaic.tif"
    tifffile.imwrite(path, image, tile=(128, 128), photometric="rgb")
    out = work / "mosaic.ome.zarr"
    summary = segment_large("nuclei", path, out, instances=True, block=block, halo=halo,
                            tile=256, overlap=32, progress=False)
    group = zarr.open_group(str(out), mode="r")["labels/instances"]
    labels = np.asarray(group[group.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]])

    # of the block corners whose crop lies inside one piece, the one whose crop has the most
    # objects cut by a block border
    borders = list(range(block, image.shape[0], block))
    inside = [b for b in borders
              if (b - crop // 2) // piece == (b + crop // 2 - 1) // piece and b >= crop // 2]
    best = None
    for cy in inside:
        for cx in inside:
            top, left = cy - crop // 2, cx - crop // 2
            window = labels[top:top + crop, left:left + crop]
            crossing = _crossing(window, [b - top for b in borders], [b - left for b in borders])
            if best is None or len(crossing) > len(best[2]):
                best = (top, left, crossing)
    top, left, crossing = best
    window = labels[top:top + crop, left:left + crop]
    pixels = image[top:top + crop, left:left + crop].astype(np.float32)
    pixels = np.clip(pixels / max(np.percentile(pixels, 99.5), 1), 0, 1)  # dim nuclei shown
    tinted = np.where(window[..., None] > 0, 0.45 * pixels + 0.55 * id_colours(window), pixels)

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    axes[0].imshow(pixels)
    axes[0].set_title(f"image (brightened), {block} px blocks:\nblock borders dashed")
    axes[1].imshow(tinted)
    axes[1].set_title("stitched objects, one colour each;\nthe ids of those a border cuts")
    for ax in axes:
        for b in borders:
            if 0 < b - top < crop:
                ax.axhline(b - top - 0.5, color="white", lw=1.2, ls="--")
            if 0 < b - left < crop:
                ax.axvline(b - left - 0.5, color="white", lw=1.2, ls="--")
        ax.set_xticks([])
        ax.set_yticks([])
    for object_id, (cy, cx) in zip(crossing, ndimage.center_of_mass(
            window > 0, window, crossing), strict=True):
        axes[1].text(cx, cy, str(object_id), color="white", fontsize=8, ha="center",
                     va="center", fontweight="bold")
    fig.savefig(FIGURE, dpi=90, bbox_inches="tight")  # the two-line titles kept whole
    plt.close(fig)
    shutil.rmtree(work)
    print(f"wrote {FIGURE.relative_to(ROOT)} ({source}; {summary['objects']} objects, "
          f"{len(crossing)} crossing a border in the crop)", flush=True)
    return FIGURE


def _crossing(labels: np.ndarray, rows: list[int], cols: list[int]) -> list[int]:
    """Ids of the objects lying on both sides of a block border."""
    found: set[int] = set()
    for r in (r for r in rows if 0 < r < labels.shape[0]):
        a, b = labels[r - 1], labels[r]
        found |= set(a[(a == b) & (a > 0)].tolist())
    for c in (c for c in cols if 0 < c < labels.shape[1]):
        a, b = labels[:, c - 1], labels[:, c]
        found |= set(a[(a == b) & (a > 0)].tolist())
    return sorted(found)


# ---------------------------------------------------------------------------- main


def cases(sizes: list[int], workers: list[int], instances: list[int], preset: str) -> list:
    largest = max(sizes)
    found = [(side, None, False) for side in sorted(sizes)]
    found += [(side, None, True) for side in instances]
    found += [(largest, n, False) for n in workers if n > 1]  # last: the longest
    named = []
    for side, n, objects in found:
        name = (f"instances_{side}" if objects else f"semantic_{side}") + (
            f"_workers{n}" if n else "")
        named.append({"name": name, "side": side, "workers": n, "instances": objects,
                      "model_name": "nuclei, TTA off" if objects else preset})
    return named


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks wsi",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int_list, default=[5000, 10000, 20000],
                        help="image sides in pixels, comma-separated (default 5000,10000,20000)")
    parser.add_argument("--workers", type=int_list, default=[1, 2],
                        help="1: one process, no Dask (every side); N > 1: a local Dask cluster "
                        "of N worker processes (the largest side only); default 1,2")
    parser.add_argument("--instances", type=int_list, default=[10000],
                        help="sides at which to also separate objects with the shipped `nuclei` "
                        "model, TTA off (default 10000; '' for none)")
    parser.add_argument("--preset", default="tiny", help="the untrained U-Net (default tiny)")
    parser.add_argument("--figure", action="store_true",
                        help=f"write {FIGURE.relative_to(ROOT)} and nothing else")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in a fresh process
    args = parser.parse_args(argv)
    if args.case:
        return run_case(json.loads(args.case))
    if args.figure:
        figure()
        return None
    model = str(save_model(args.preset))
    nuclei = str(nuclei_without_tta()) if args.instances else None
    for case in cases(args.sizes, args.workers, args.instances, args.preset):
        side = case["side"]
        image = slide(side)
        settings = {"side": side, "megapixels": round(side * side / 1e6, 1),
                    "workers": case["workers"], "instances": case["instances"],
                    "model": (f"{case['model_name']} (shipped weights)" if case["instances"]
                              else f"{case['model_name']} (untrained)"),
                    "block": BLOCK, "halo": HALO, "tile": TILE, "overlap": OVERLAP,
                    "tile_batch": TILE_BATCH,
                    "input": f"tiled TIFF ({TIFF_TILE} px tiles, uncompressed, 2 levels), "
                             "level 0"}
        print(f"--- {case['name']}", flush=True)
        result = in_subprocess({
            "name": case["name"], "model": nuclei if case["instances"] else model,
            "image": str(image), "out": str(DATA / "out" / f"{case['name']}.ome.zarr"),
            "instances": case["instances"], "workers": case["workers"], "block": BLOCK,
            "halo": HALO, "tile": TILE, "overlap": OVERLAP, "tile_batch": TILE_BATCH})
        metrics = {"seconds": result.pop("seconds"),
                   "megapixels_per_s": 0.0, **result,
                   "peak_rss_summed": "VmHWM of the case's process (model load, Dask client "
                                      "and scheduler, OME-Zarr writing) plus that of every "
                                      "process it started (Dask workers), polled every "
                                      f"{POLL_SECONDS} s"}
        metrics["megapixels_per_s"] = round(side * side / 1e6 / metrics["seconds"], 3)
        if metrics["objects"] is None:
            metrics.pop("objects")
        print(json.dumps(metrics), flush=True)
        record("wsi", case["name"], settings, metrics)
    return None


if __name__ == "__main__":
    main()
