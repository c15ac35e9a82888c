"""Overlap-tile inference for images larger than the network's input, at full resolution.

The U-Net paper's strategy: the image is mirror-padded at its borders, cut into
overlapping tiles at its own pixel size (no resizing, so small objects survive), the tiles
are segmented in batches, and the overlapping class probabilities are blended with a smooth
window (a raised-cosine ramp over the overlap) rather than overwritten, so no seam shows
where tiles meet. Tiles are processed one row of tiles at a time and finished rows are
written out at once: memory grows with the tile batch and one band of rows, not with the
image (an 8000 x 8000 image needs its own pixels, the mask and a ``tile`` x width band).

Example:
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

    Example:
        >>> tile_starts(300, 128, 96)
        [0, 96, 172]
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """Float32 [tile, tile] weights: 1 inside, a raised-cosine ramp over ``overlap`` px.

    The ramp never reaches 0 (a pixel covered by a single tile keeps its value).

    Example:
        >>> w = blend_window(8, 4)
        >>> float(w[4, 4]), bool(w[0, 0] > 0), bool(w[0, 4] < w[2, 4] < w[4, 4])
        (1.0, True, True)
    """
    ramp = np.ones(tile, np.float32)
    if overlap > 0:
        t = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        edge = 0.5 - 0.5 * np.cos(np.pi * t)
        ramp[:overlap] = edge
        ramp[tile - overlap:] = np.minimum(ramp[tile - overlap:], edge[::-1])
    return np.outer(ramp, ramp)


def check_tiling(tile: int, overlap: int, multiple: int = 1) -> None:
    """Raise ValueError unless ``tile`` and ``overlap`` make a valid tiling."""
    if tile < 1 or tile % multiple:
        raise ValueError(
            f"tile must be a positive multiple of {multiple} (2**depth of the U-Net); got "
            f"{tile}; try {max(multiple, tile // multiple * multiple)}"
        )
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap must be in [0, tile / 2] = [0, {tile // 2}]; got {overlap}")


def predict_tiled(
    probabilities_fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: int,
    overlap: int,
    num_classes: int,
    batch_size: int = 4,
    return_probabilities: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Segment a large image tile by tile at its own pixel size.

    Args:
        probabilities_fn: uint8 tiles [n, tile, tile, C] -> float probabilities
            [n, tile, tile, K] (a predictor's per-tile segmenter).
        image: uint8 [H, W, C], any size (smaller than a tile works too).
        tile: tile side in pixels (a multiple of the model's 2**depth).
        overlap: pixels that neighbouring tiles share; each side's context is ``overlap / 2``
            (the image border is mirror-padded by as much, as in the paper).
        num_classes: K.
        batch_size: tiles per call of ``probabilities_fn`` (bounds the memory).
        return_probabilities: also return float32 probabilities [H, W, K] (memory: 4 K
            bytes per pixel).

    Returns:
        (uint8 mask [H, W], probabilities or None).
    """
    check_tiling(tile, overlap)
    height, width = image.shape[:2]
    margin = overlap // 2
    # mirror padding: the context of border pixels, and at least one tile in each direction
    pad_h, pad_w = max(0, tile - height - 2 * margin), max(0, tile - width - 2 * margin)
    padded = np.pad(image, [(margin, margin + pad_h), (margin, margin + pad_w), (0, 0)],
                    mode="symmetric")
    full_h, full_w = padded.shape[:2]
    step = tile - overlap
    ys, xs = tile_starts(full_h, tile, step), tile_starts(full_w, tile, step)
    window = blend_window(tile, overlap)[..., None]

    mask = np.empty((height, width), np.uint8)
    probs = np.empty((height, width, num_classes), np.float32) if return_probabilities else None
    band = np.zeros((tile, full_w, num_classes), np.float32)  # rows [top, top + tile)
    weight = np.zeros((tile, full_w, 1), np.float32)
    top = 0

    def emit(rows: int) -> None:
        """Finish padded rows [top, top + rows): normalise, crop the margins, store."""
        lo, hi = max(top, margin), min(top + rows, margin + height)
        if hi > lo:
            part = band[lo - top:hi - top, margin:margin + width]
            part = part / np.maximum(weight[lo - top:hi - top, margin:margin + width], 1e-12)
            mask[lo - margin:hi - margin] = np.argmax(part, axis=-1)
            if probs is not None:
                probs[lo - margin:hi - margin] = part

    for y in ys:
        shift = y - top
        if shift:  # rows above y get no more tiles
            emit(shift)
            band = np.roll(band, -shift, axis=0)
            weight = np.roll(weight, -shift, axis=0)
            band[tile - shift:] = 0
            weight[tile - shift:] = 0
            top = y
        for i in range(0, len(xs), batch_size):
            chunk = xs[i:i + batch_size]
            tiles = np.stack([padded[y:y + tile, x:x + tile] for x in chunk])
            out = np.asarray(probabilities_fn(tiles), np.float32)
            for x, p in zip(chunk, out, strict=True):
                band[:, x:x + tile] += p * window
                weight[:, x:x + tile] += window
    emit(min(tile, full_h - top))
    return mask, probs
