"""An embedded, offline, deterministic segmentation dataset of textured shapes.

Each scene holds several discs, squares and triangles over a textured background, drawn in
random order so that they occlude each other, each object in a random colour that differs
from the background's, with a texture per class (the background shares the squares'
stripes) and Gaussian noise on top: colour does not tell the class, shape and texture do.
It exists so that a fresh clone trains with no download.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("background", "disc", "square", "triangle")


def _texture(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, colour: np.ndarray, kind: str
) -> np.ndarray:
    """A colour modulated by a random pattern, [H, W, 3] in 0..255.

    kind: "stripes" (an oriented grating), "checks" (two crossed gratings) or "flat".
    """
    angle = rng.uniform(0, np.pi)
    freq = rng.uniform(0.6, 1.2)  # periods of 5-10 px: visible inside the smallest objects
    phase = rng.uniform(0, 2 * np.pi)
    amplitude = rng.uniform(15, 40)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    if kind == "stripes":
        wave = np.sin(freq * u + phase)
    elif kind == "checks":
        v = -np.sin(angle) * xx + np.cos(angle) * yy
        wave = np.sign(np.sin(freq * u + phase) * np.sin(freq * v))
    else:
        wave = np.zeros_like(u)
    return colour[None, None, :] + amplitude * wave[..., None]


# Each class has its own texture family, but the background shares the squares' stripes and
# colours are random, so only shape and texture together tell every pixel's class.
TEXTURES = {1: "flat", 2: "stripes", 3: "checks"}


def make_scene(seed: int, size: int = 128, max_objects: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: a uint8 RGB image [size, size, 3] and a uint8 mask [size, size, 1].

    Examples:
        >>> image, mask = make_scene(0, size=64)
        >>> image.shape, mask.shape, int(mask.max()) <= 3
        ((64, 64, 3), (64, 64, 1), True)
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = rng.uniform(40, 215, size=3)
    image = _texture(rng, yy, xx, background, "stripes")
    mask = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(2, max_objects + 1)):
        label = int(rng.integers(1, len(CLASS_NAMES)))
        radius = rng.uniform(0.08, 0.22) * size
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
        # any colour but the background's, so every object has an edge to find
        shift = rng.uniform(50, 110, size=3) * rng.choice([-1, 1], size=3)
        colour = np.clip(background + shift, 0, 255)
        image[inside] = _texture(rng, yy, xx, colour, TEXTURES[label])[inside]
        mask[inside] = label
    image += rng.normal(0, rng.uniform(3, 12), size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask[..., None]


def make_arrays(num_examples: int, seed: int = 0, size: int = 128):
    """Return ``num_examples`` scenes as uint8 arrays [N, size, size, 3] and [N, size, size, 1].

    Example ``i`` depends only on ``(seed, i)``, so any prefix of a larger set is the same.
    """
    scenes = [make_scene(seed * 1_000_003 + i, size) for i in range(num_examples)]
    images = np.stack([s[0] for s in scenes])
    masks = np.stack([s[1] for s in scenes])
    return images, masks
