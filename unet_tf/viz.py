"""Pictures people would rather look at than read: curves, overlays, grids, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unet_tf.imageio import as_rgb


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100, tight: bool = True) -> Path:
    """Write a matplotlib figure to ``path`` and free it."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return Path(path)


def class_colors(num_classes: int) -> np.ndarray:
    """A fixed uint8 RGB colour per class (tab10/tab20), [num_classes, 3]."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    return (np.array([cmap(i % cmap.N)[:3] for i in range(num_classes)]) * 255).astype(np.uint8)


def colorize(mask: np.ndarray, num_classes: int, ignore_label: int = 255) -> np.ndarray:
    """Class-index mask [H, W] (or [H, W, 1]) -> RGB uint8 [H, W, 3]; ignored pixels black."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    colors = np.concatenate([class_colors(num_classes), np.zeros((1, 3), np.uint8)])
    index = np.where(mask == ignore_label, num_classes, np.clip(mask, 0, num_classes - 1))
    return colors[index]


def overlay(image: np.ndarray, mask: np.ndarray, num_classes: int, alpha: float = 0.5):
    """Blend a colourised mask over an image (uint8 or float in [0, 1]) -> uint8 RGB."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(image.reshape(image.shape[:2] + (1,)), 3, axis=-1)
    color = colorize(mask, num_classes)
    return (image * (1 - alpha) + color * alpha).astype(np.uint8)


def legend_handles(class_names: Sequence[str]):
    from matplotlib.patches import Patch

    colors = class_colors(len(class_names)) / 255.0
    return [Patch(color=c, label=n) for c, n in zip(colors, class_names, strict=True)]


def plot_history(history: dict[str, list[float]], path: str | Path) -> Path:
    """Loss and mean IoU per epoch, training and validation, saved as a PNG."""
    plt = _pyplot()
    panels = [k for k in ("loss", "mean_iou", "pixel_accuracy") if k in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path, dpi=100)


def plot_predictions(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray] | None,
    predictions: Sequence[np.ndarray],
    class_names: Sequence[str],
    path: str | Path,
) -> Path:
    """A grid of image / ground truth / prediction / error rows, one row per example."""
    plt = _pyplot()
    n = len(images)
    k = len(class_names)
    columns = ["image", "ground truth", "prediction", "errors"] if truths is not None else [
        "image", "prediction"]
    fig, axes = plt.subplots(n, len(columns), figsize=(2.6 * len(columns), 2.6 * n),
                             squeeze=False)
    for row in range(n):
        image = np.asarray(images[row])
        if image.dtype != np.uint8:  # antialiased resizing overshoots [0, 1] a little
            image = np.clip(image, 0.0, 1.0)
        pred = np.asarray(predictions[row]).squeeze()
        panels = [image]
        if truths is not None:
            truth = np.asarray(truths[row]).squeeze()
            panels.append(overlay(image, truth, k))
        panels.append(overlay(image, pred, k))
        if truths is not None:
            wrong = (pred != truth) & (truth != 255)
            # wrong pixels in red over a dimmed image (ignored pixels never count as wrong)
            err = overlay(image, np.zeros_like(truth), 1, alpha=0.0) // 2
            err[wrong] = (230, 30, 30)
            panels.append(err)
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel.squeeze(), cmap="gray" if panel.ndim == 2 or panel.shape[-1] == 1
                      else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col])
    fig.legend(handles=legend_handles(class_names), loc="lower center",
               ncol=min(len(class_names), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.06 if n > 1 else 0.12, 1, 1))
    return save_figure(fig, path, dpi=90, tight=False)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix heat map (true class rows, predicted columns)."""
    plt = _pyplot()
    confusion = np.asarray(confusion, np.float64)
    norm = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("confusion (rows sum to 1)")
    return save_figure(fig, path, dpi=100)


def plot_examples(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    class_names: Sequence[str],
    path: str | Path,
    dpi: int = 80,
) -> Path:
    """A first look at a dataset: each image above its mask overlaid in class colours.

    Args:
        images: uint8 or float [0, 1] images [H, W, C].
        masks: class-index masks [H, W] or [H, W, 1] (255 = ignored, drawn black).
        class_names: names in class order, for the legend.
        path: PNG file to write.
        dpi: resolution of the PNG (80 keeps notebooks small).

    Examples:
        >>> import numpy as np
        >>> plot_examples([np.zeros((8, 8, 3))], [np.ones((8, 8))], ["a", "b"],
        ...               "/tmp/examples.png").name
        'examples.png'
    """
    plt = _pyplot()
    n = len(images)
    k = len(class_names)
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 5.0), squeeze=False)
    for col in range(n):
        image = np.asarray(images[col])
        if image.dtype != np.uint8:  # bilinear resizing can overshoot [0, 1] a little
            image = np.clip(image, 0.0, 1.0)
        shown = image.squeeze()
        axes[0, col].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        axes[1, col].imshow(overlay(image, np.asarray(masks[col]).astype(np.int64), k))
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("mask")
    fig.legend(handles=legend_handles(class_names), loc="lower center",
               ncol=min(k, 6), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, path, dpi=dpi, tight=False)


def plot_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    columns: int | None = None,
    size: float = 3.2,
    dpi: int = 80,
) -> Path:
    """Pictures side by side (in rows of ``columns``), each with a title: before and after.

    Examples:
        >>> import numpy as np
        >>> plot_images([np.zeros((8, 8, 3), np.uint8)] * 2, ["before", "after"],
        ...             "/tmp/pair.png").name
        'pair.png'
    """
    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles; give one title each")
    plt = _pyplot()
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    first = np.asarray(images[0])
    aspect = first.shape[0] / first.shape[1]
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * aspect * rows + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles, strict=False):
        shown = np.asarray(image).squeeze()
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def label_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap font size
        return ImageFont.load_default()


def legend_strip(class_names: Sequence[str], width: int, colors: np.ndarray | None = None):
    """A white uint8 RGB strip [h, width, 3] of colour swatches with the class names."""
    from PIL import Image, ImageDraw

    colors = class_colors(len(class_names)) if colors is None else colors
    size = max(12, min(24, width // 40))
    font = label_font(size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows, x, y = [], 0, 0
    for name in class_names:  # wrap entries onto as many rows as the width needs
        w = size + 6 + int(draw.textlength(str(name), font=font)) + size
        if x and x + w > width:
            x, y = 0, y + size + 8
        rows.append((x, y, name))
        x += w
    strip = Image.new("RGB", (width, y + size + 12), "white")
    draw = ImageDraw.Draw(strip)
    for (x, y, name), color in zip(rows, colors, strict=True):
        box = [x + 6, y + 6, x + 6 + size, y + 6 + size]
        draw.rectangle(box, fill=tuple(int(c) for c in color), outline="black")
        draw.text((x + size + 12, y + 6), str(name), fill="black", font=font)
    return np.asarray(strip)


def overlay_with_legend(image: np.ndarray, mask: np.ndarray, class_names: Sequence[str],
                        alpha: float = 0.5) -> np.ndarray:
    """The image with its mask in class colours and a legend naming the classes below it.

    Examples:
        >>> pic = overlay_with_legend(np.zeros((60, 80, 3), np.uint8), np.zeros((60, 80)),
        ...                           ["pet", "background"])
        >>> pic.shape[1], pic.shape[0] > 60
        (80, True)
    """
    blended = overlay(as_rgb(image), np.asarray(mask).astype(np.int64), len(class_names),
                      alpha=alpha)
    return np.concatenate([blended, legend_strip(class_names, blended.shape[1])], axis=0)


def side_by_side(panels: Sequence[np.ndarray], titles: Sequence[str],
                 height: int = 320) -> np.ndarray:
    """Panels (uint8 RGB or float [0, 1] gray) scaled to one height, titled, side by side."""
    from PIL import Image, ImageDraw

    font = label_font(16)
    tiles = []
    for panel, title in zip(panels, titles, strict=True):
        panel = np.asarray(panel)
        if panel.dtype != np.uint8:
            panel = np.clip(panel * 255.0, 0, 255).astype(np.uint8)
        im = Image.fromarray(panel).convert("RGB")
        width = max(1, round(im.width * height / im.height))
        im = im.resize((width, height), Image.Resampling.LANCZOS)
        tile = Image.new("RGB", (width + 8, height + 30), "white")
        tile.paste(im, (4, 26))
        ImageDraw.Draw(tile).text((6, 4), title, fill="black", font=font)
        tiles.append(np.asarray(tile))
    return np.concatenate(tiles, axis=1)
