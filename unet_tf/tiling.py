"""Overlap-tile inference for images larger than the network's input, at full resolution.

The U-Net paper's strategy: the image is mirror-padded at its borders, cut into
overlapping tiles at its own pixel size (no resizing, so small objects survive), the tiles
are segmented in batches, and the overlapping class probabilities are blended with a smooth
window (a raised-cosine ramp over the overlap) rather than overwritten, so no seam shows
where tiles meet. Tiles are processed one row of tiles at a time and finished rows are
written out at once: memory grows with the tile batch and one band of rows, not with the
image (an 8000 x 8000 image needs its own pixels, the mask and a ``tile`` x width band).
A tile larger than the (padded) image is clamped to it along each side, so ``tile=100000``
on a photo is one tile of the photo's size, not a 100000 x 100000 array.

Examples:
    >>> import numpy as np
    >>> def probabilities(tiles):  # any segmenter of uint8 tiles [n, t, t, 3]
    ...     p = tiles[..., :1].astype("float32") / 255
    ...     return np.concatenate([1 - p, p], axis=-1)
    >>> image = np.zeros((300, 500, 3), np.uint8); image[:, 250:] = 255
    >>> mask, _ = predict_tiled(probabilities, image, tile=128, overlap=32, num_classes=2)
    >>> mask.shape, int(mask[0, 0]), int(mask[0, -1])
    ((300, 500), 0, 1)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px every ``step`` px covering ``length`` px.

    The tiles may run past ``length`` (the caller pads): every start is a multiple of
    ``step``, so with ``step`` a multiple of the U-Net's 2**depth every tile sees the same
    pooling grid and tiles agree where they overlap.

    Examples:
        >>> tile_starts(300, 128, 96)
        [0, 96, 192]
    """
    count = max(0, -(-(length - tile) // step))
    return [i * step for i in range(count + 1)]


def blend_ramp(tile: int, overlap: int) -> np.ndarray:
    """Float32 [tile] weights along one side: 1 inside, a raised-cosine ramp at both ends.

    Examples:
        >>> [round(float(v), 2) for v in blend_ramp(6, 2)]
        [0.15, 0.85, 1.0, 1.0, 0.85, 0.15]
    """
    ramp = np.ones(tile, np.float32)
    if overlap > 0:
        t = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        edge = 0.5 - 0.5 * np.cos(np.pi * t)
        ramp[:overlap] = edge
        ramp[tile - overlap:] = np.minimum(ramp[tile - overlap:], edge[::-1])
    return ramp


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """Float32 [tile, tile] weights: 1 inside, a raised-cosine ramp over ``overlap`` px.

    The ramp never reaches 0 (a pixel covered by a single tile keeps its value).

    Examples:
        >>> w = blend_window(12, 4)
        >>> float(w[6, 6]), bool(w[0, 0] > 0), bool(w[0, 6] < w[2, 6] < w[6, 6])
        (1.0, True, True)
    """
    ramp = blend_ramp(tile, overlap)
    return np.outer(ramp, ramp)


def check_tiling(tile: int, overlap: int, multiple: int = 1) -> None:
    """Raise ValueError unless ``tile`` and ``overlap`` make a valid tiling.

    Both must be multiples of the U-Net's 2**depth, so that all tiles share one pooling grid.
    """
    if tile < 1 or tile % multiple:
        raise ValueError(
            f"tile must be a positive multiple of {multiple} (2**depth of the U-Net); got "
            f"{tile}; try {max(multiple, tile // multiple * multiple)}"
        )
    if not 0 <= overlap <= tile // 2 or overlap % multiple:
        raise ValueError(f"overlap must be in [0, tile / 2] = [0, {tile // 2}] and a multiple "
                         f"of {multiple} (2**depth of the U-Net); got {overlap}")


def context_margin(overlap: int, multiple: int = 1) -> int:
    """Mirrored context around the image: half the overlap, rounded up to ``multiple``."""
    return -(-(overlap // 2) // multiple) * multiple


def clamp_tile(tile: int, length: int, margin: int, multiple: int = 1) -> int:
    """The tile side along one image side: ``tile``, or less where one tile covers it all.

    A tile larger than the image plus its mirrored margins would only segment padding (and
    ``tile=100000`` would allocate a 100000-pixel-wide array): it shrinks to the padded
    length, rounded up to ``multiple``, and that side is then covered by a single tile.

    Examples:
        >>> clamp_tile(100000, 40, 16, multiple=4), clamp_tile(64, 300, 16, multiple=4)
        (72, 64)
    """
    return min(tile, -(-(length + 2 * margin) // multiple) * multiple)


def predict_tiled(
    probabilities_fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: int,
    overlap: int,
    num_classes: int,
    batch_size: int = 4,
    return_probabilities: bool = False,
    multiple: int = 1,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Segment a large image tile by tile at its own pixel size.

    Args:
        probabilities_fn: uint8 tiles [n, tile, tile, C] -> float probabilities
            [n, tile, tile, K] (a predictor's per-tile segmenter; tiles clamped to a small
            image are [n, tile_h, tile_w, C]).
        image: uint8 [H, W, C], any size (smaller than a tile works too).
        tile: tile side in pixels (a multiple of the model's 2**depth); clamped to the image
            (plus its margins) along a side it exceeds (:func:`clamp_tile`).
        overlap: pixels that neighbouring tiles share; each side's context is ``overlap / 2``
            (the image border is mirror-padded by as much, as in the paper).
        num_classes: K.
        batch_size: tiles per call of ``probabilities_fn`` (bounds the memory).
        return_probabilities: also return float32 probabilities [H, W, K] (memory: 4 K
            bytes per pixel).
        multiple: the U-Net's 2**depth; ``tile`` and ``overlap`` must be multiples of it.

    Returns:
        (uint8 mask [H, W], probabilities or None).
    """
    check_tiling(tile, overlap, multiple)
    height, width = image.shape[:2]
    margin = context_margin(overlap, multiple)
    # tile_h x tile_w: a side the tile exceeds gets one tile of the padded image's size
    tile_h, tile_w = (clamp_tile(tile, n, margin, multiple) for n in (height, width))
    ys = tile_starts(height + 2 * margin, tile_h, tile_h - overlap) if tile_h == tile else [0]
    xs = tile_starts(width + 2 * margin, tile_w, tile_w - overlap) if tile_w == tile else [0]
    full_h, full_w = ys[-1] + tile_h, xs[-1] + tile_w
    # mirror padding: the context of border pixels, and whole tiles at the bottom and right
    padded = np.pad(image, [(margin, full_h - height - margin),
                            (margin, full_w - width - margin), (0, 0)], mode="symmetric")
    # a side with one tile needs no ramp (nothing to blend with); ramps of other sides do
    window = np.outer(blend_ramp(tile_h, overlap if len(ys) > 1 else 0),
                      blend_ramp(tile_w, overlap if len(xs) > 1 else 0))[..., None]
    rows = _BlendedRows(height, width, num_classes, tile_h, full_w, margin,
                        return_probabilities)
    for y in ys:
        rows.move_to(y)
        for i in range(0, len(xs), batch_size):
            chunk = xs[i:i + batch_size]
            tiles = np.stack([padded[y:y + tile_h, x:x + tile_w] for x in chunk])
            out = np.asarray(probabilities_fn(tiles), np.float32)
            for x, p in zip(chunk, out, strict=True):
                rows.add(x, p * window, window)
    rows.emit(min(tile_h, full_h - rows.top))
    return rows.mask, rows.probs


class _BlendedRows:
    """The band of padded rows [top, top + tile_h) that tiles are still blended into; rows
    above a new tile row are finished (normalised, margins cropped) into the outputs."""

    def __init__(self, height: int, width: int, num_classes: int, tile_h: int, full_w: int,
                 margin: int, return_probabilities: bool):
        self.height, self.width, self.margin, self.tile_h = height, width, margin, tile_h
        self.mask = np.empty((height, width), np.uint8)
        self.probs = (np.empty((height, width, num_classes), np.float32)
                      if return_probabilities else None)
        self.band = np.zeros((tile_h, full_w, num_classes), np.float32)
        self.weight = np.zeros((tile_h, full_w, 1), np.float32)
        self.top = 0

    def add(self, x: int, weighted: np.ndarray, window: np.ndarray) -> None:
        """Blend one tile's window-weighted probabilities in at column ``x``."""
        self.band[:, x:x + weighted.shape[1]] += weighted
        self.weight[:, x:x + weighted.shape[1]] += window

    def move_to(self, y: int) -> None:
        """Start the band at row ``y``: rows above it get no more tiles."""
        shift = y - self.top
        if shift:
            self.emit(shift)
            self.band = np.roll(self.band, -shift, axis=0)
            self.weight = np.roll(self.weight, -shift, axis=0)
            self.band[self.tile_h - shift:] = 0
            self.weight[self.tile_h - shift:] = 0
            self.top = y

    def emit(self, rows: int) -> None:
        """Finish padded rows [top, top + rows): normalise, crop the margins, store."""
        top, margin, width = self.top, self.margin, self.width
        lo, hi = max(top, margin), min(top + rows, margin + self.height)
        if hi > lo:
            part = self.band[lo - top:hi - top, margin:margin + width]
            part = part / np.maximum(self.weight[lo - top:hi - top, margin:margin + width],
                                     1e-12)
            self.mask[lo - margin:hi - margin] = np.argmax(part, axis=-1)
            if self.probs is not None:
                self.probs[lo - margin:hi - margin] = part
