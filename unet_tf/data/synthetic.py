"""An embedded, offline, deterministic segmentation dataset of textured shapes.

Each scene holds several discs, squares and triangles over a textured background, drawn in
random order so that they occlude each other, with colours drawn from the same distribution
as the background and Gaussian noise on top: colour alone does not tell the class, shape
and texture do. It exists so that a fresh clone trains with no download.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("background", "disc", "square", "triangle")


def _texture(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A random colour modulated by a random oriented grating, [H, W, 3] in 0..255."""
    colour = rng.uniform(40, 215, size=3)
    angle = rng.uniform(0, np.pi)
    freq = rng.uniform(0.05, 0.5)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    amplitude = rng.uniform(10, 40)
    return colour[None, None, :] + amplitude * wave[..., None]


def make_scene(seed: int, size: int = 128, max_objects: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: a uint8 RGB image [size, size, 3] and a uint8 mask [size, size, 1].

    Example:
        >>> image, mask = make_scene(0, size=64)
        >>> image.shape, mask.shape, int(mask.max()) <= 3
        ((64, 64, 3), (64, 64, 1), True)
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = _texture(rng, yy, xx)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(2, max_objects + 1)):
        label = int(rng.integers(1, len(CLASS_NAMES)))
        radius = rng.uniform(0.06, 0.2) * size
        cy, cx = rng.uniform(0, size, size=2)
        if label == 1:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        elif label == 2:
            angle = rng.uniform(0, np.pi / 2)
            u = np.cos(angle) * (xx - cx) + np.sin(angle) * (yy - cy)
            v = -np.sin(angle) * (xx - cx) + np.cos(angle) * (yy - cy)
            inside = (np.abs(u) <= radius * 0.85) & (np.abs(v) <= radius * 0.85)
        else:
            angle = rng.uniform(0, 2 * np.pi)
            corners = [
                (cx + radius * 1.3 * np.cos(angle + k * 2 * np.pi / 3),
                 cy + radius * 1.3 * np.sin(angle + k * 2 * np.pi / 3))
                for k in range(3)
            ]
            inside = np.ones((size, size), bool)
            for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
                inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
        image[inside] = _texture(rng, yy, xx)[inside]
        mask[inside] = label
    image += rng.normal(0, rng.uniform(5, 20), size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask[..., None]


def make_arrays(num_examples: int, seed: int = 0, size: int = 128):
    """Return ``num_examples`` scenes as uint8 arrays [N, size, size, 3] and [N, size, size, 1].

    Example ``i`` depends only on ``(seed, i)``, so any prefix of a larger set is the same.
    """
    scenes = [make_scene(seed * 1_000_003 + i, size) for i in range(num_examples)]
    images = np.stack([s[0] for s in scenes])
    masks = np.stack([s[1] for s in scenes])
    return images, masks
