"""Blocks of a large image, each segmented with the image's own tile grid.

:func:`unet_tf.tiling.predict_tiled` walks one grid of overlapping tiles over the whole
(mirror-padded) image and blends their probabilities. Here every block computes exactly the
part of that blend that falls inside it (plus a halo): it runs the tiles of the same global
grid that touch it, with the same blending windows, added in the same order, so the
probabilities of a block equal the in-memory result bit for bit, whatever the block size.
Tiles that straddle a block border are segmented by both blocks (the price of independent
blocks: about ``(block + tile) / block`` per side).

Examples:
    >>> import numpy as np
    >>> from unet_tf.tiling import predict_tiled
    >>> def probabilities(tiles):
    ...     p = tiles[..., :1].astype("float32") / 255
    ...     return np.concatenate([1 - p, p], axis=-1)
    >>> image = np.random.default_rng(0).integers(0, 256, (300, 500, 3), np.uint8)
    >>> grid = TileGrid((300, 500), tile=128, overlap=32)
    >>> region = Region(100, 220, 250, 400)
    >>> probs = grid.probabilities(probabilities, lambda r, c: image[r, c], region, 2)
    >>> _, whole = predict_tiled(probabilities, image, 128, 32, 2, return_probabilities=True)
    >>> bool(np.array_equal(probs, whole[100:220, 250:400]))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from unet_tf.tiling import blend_ramp, check_tiling, clamp_tile, context_margin, tile_starts


@dataclass(frozen=True)
class Region:
    """Rows [top, bottom) and columns [left, right) of an image."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.bottom - self.top, self.right - self.left

    def grow(self, halo: int, shape: tuple[int, int]) -> Region:
        """This region with ``halo`` pixels more on each side, cut at the image's borders."""
        return Region(max(0, self.top - halo), min(shape[0], self.bottom + halo),
                      max(0, self.left - halo), min(shape[1], self.right + halo))


def blocks(shape: tuple[int, int], block: int) -> Iterator[tuple[tuple[int, int], Region]]:
    """((row, column) index, Region) of every block of ``block`` px, row by row.

    Examples:
        >>> [(i, r.shape) for i, r in blocks((300, 500), 256)]
        [((0, 0), (256, 256)), ((0, 1), (256, 244)), ((1, 0), (44, 256)), ((1, 1), (44, 244))]
    """
    if block < 1:
        raise ValueError(f"block must be a positive number of pixels; got {block}")
    height, width = shape
    for i, top in enumerate(range(0, height, block)):
        for j, left in enumerate(range(0, width, block)):
            yield (i, j), Region(top, min(top + block, height), left, min(left + block, width))


def mirror_index(index: np.ndarray, length: int) -> np.ndarray:
    """Indices into a side of ``length`` px as ``np.pad(mode="symmetric")`` extends it.

    Examples:
        >>> mirror_index(np.arange(-3, 7), 4).tolist()
        [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]
    """
    index = np.mod(index, 2 * length)
    return np.where(index < length, index, 2 * length - 1 - index)


class TileGrid:
    """The tile grid :func:`unet_tf.tiling.predict_tiled` lays over an image of ``shape``."""

    def __init__(self, shape: tuple[int, int], tile: int, overlap: int, multiple: int = 1):
        check_tiling(tile, overlap, multiple)
        self.shape, self.overlap = shape, overlap
        self.margin = margin = context_margin(overlap, multiple)
        self.tile_h, self.tile_w = (clamp_tile(tile, n, margin, multiple) for n in shape)
        height, width = shape
        self.ys = (tile_starts(height + 2 * margin, self.tile_h, self.tile_h - overlap)
                   if self.tile_h == tile else [0])
        self.xs = (tile_starts(width + 2 * margin, self.tile_w, self.tile_w - overlap)
                   if self.tile_w == tile else [0])
        self.window = np.outer(blend_ramp(self.tile_h, overlap if len(self.ys) > 1 else 0),
                               blend_ramp(self.tile_w, overlap if len(self.xs) > 1 else 0)
                               )[..., None]

    def touching(self, region: Region) -> tuple[list[int], list[int]]:
        """Tile starts (padded coordinates) whose tiles overlap ``region``."""
        m = self.margin
        ys = [y for y in self.ys if y - m < region.bottom and y - m + self.tile_h > region.top]
        xs = [x for x in self.xs if x - m < region.right and x - m + self.tile_w > region.left]
        return ys, xs

    def probabilities(
        self,
        probabilities_fn: Callable[[np.ndarray], np.ndarray],
        read: Callable[[slice, slice], np.ndarray],
        region: Region,
        num_classes: int,
        batch_size: int = 4,
    ) -> np.ndarray:
        """Float32 probabilities [h, w, K] of ``region``, equal to the whole image's blend.

        Args:
            probabilities_fn: uint8 tiles [n, tile_h, tile_w, C] -> probabilities.
            read: (rows, cols) slices inside the image -> uint8 pixels [h, w, C].
            region: the part of the image to segment.
            num_classes: K.
            batch_size: tiles per call of ``probabilities_fn``.
        """
        ys, xs = self.touching(region)
        m = self.margin
        # the pixels under those tiles, mirrored past the image's borders as np.pad would
        rows = mirror_index(np.arange(ys[0] - m, ys[-1] - m + self.tile_h), self.shape[0])
        cols = mirror_index(np.arange(xs[0] - m, xs[-1] - m + self.tile_w), self.shape[1])
        pixels = read(slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        pixels = pixels[rows - rows.min()][:, cols - cols.min()]
        total = np.zeros((*region.shape, num_classes), np.float32)
        weight = np.zeros((*region.shape, 1), np.float32)
        for y in ys:
            for i in range(0, len(xs), batch_size):
                chunk = xs[i:i + batch_size]
                tiles = np.stack([pixels[y - ys[0]:y - ys[0] + self.tile_h,
                                         x - xs[0]:x - xs[0] + self.tile_w] for x in chunk])
                out = np.asarray(probabilities_fn(tiles), np.float32)
                for x, p in zip(chunk, out, strict=True):
                    self._add(total, weight, region, y - m, x - m, p * self.window)
        return total / np.maximum(weight, 1e-12)

    def _add(self, total, weight, region: Region, top: int, left: int, weighted) -> None:
        """Add the part of one tile (image coordinates ``top``, ``left``) inside ``region``."""
        r0, r1 = max(top, region.top), min(top + self.tile_h, region.bottom)
        c0, c1 = max(left, region.left), min(left + self.tile_w, region.right)
        if r1 <= r0 or c1 <= c0:
            return
        inside = (slice(r0 - region.top, r1 - region.top), slice(c0 - region.left,
                                                                   c1 - region.left))
        tile = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
        total[inside] += weighted[tile]
        weight[inside] += self.window[tile]
