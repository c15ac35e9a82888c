"""Objects across block borders: each object is kept by the block that owns its centre.

A block separates objects in itself plus a halo (:mod:`unet_tf.instances`), so an object cut
by the block's border is whole in the halo; the block keeps the objects whose centre lies in
it, and only those (StarDist's ``predict_instances_big`` rule). Each object travels as its
bounding box and a boolean mask; ids become global once every block has counted its objects,
and each block's pixels are then painted from the objects of itself and its eight
neighbours, so an object spanning four blocks is one object with one id. Objects larger than
the halo are cut at the halo's edge: choose a halo wider than the largest object.

Examples:
    >>> ids = np.zeros((10, 10), np.int32); ids[1:4, 7:10] = 1; ids[6:9, 2:5] = 2
    >>> kept = keep_owned(ids, Region(0, 10, 0, 10), Region(0, 10, 0, 8))
    >>> [o.bbox for o in kept.objects]  # object 1's centre (x = 8) is the next block's
    [(6, 2, 9, 5)]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unet_tf.wsi.blocks import Region


@dataclass
class BlockObjects:
    """The objects one block keeps, in image coordinates.

    Attributes:
        objects: one :class:`Object` per kept object, in the order of their local ids.
    """

    objects: list[Object]

    def save(self, path: Path) -> None:
        """Write to an ``.npz`` file (boxes, areas, centroids, packed masks)."""
        boxes = np.array([o.bbox for o in self.objects], np.int64).reshape(-1, 4)
        masks = [o.mask.ravel() for o in self.objects]
        flat = np.concatenate(masks) if masks else np.zeros(0, bool)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, boxes=boxes, masks=np.packbits(flat), size=flat.size)
        tmp.replace(path)  # the finished file appears whole (a killed job leaves none)

    @staticmethod
    def count(path: Path) -> int:
        """How many objects a saved block holds (reads their boxes only)."""
        with np.load(path) as data:
            return len(data["boxes"])

    @classmethod
    def load(cls, path: Path) -> BlockObjects:
        with np.load(path) as data:
            boxes, size = data["boxes"], int(data["size"])
            flat = np.unpackbits(data["masks"], count=size).astype(bool)
        objects, start = [], 0
        for top, left, bottom, right in boxes.tolist():
            n = (bottom - top) * (right - left)
            objects.append(Object((top, left, bottom, right),
                                  flat[start:start + n].reshape(bottom - top, right - left)))
            start += n
        return cls(objects)


@dataclass
class Object:
    """One object: ``bbox`` (top, left, bottom, right) in the image, ``mask`` inside it."""

    bbox: tuple[int, int, int, int]
    mask: np.ndarray

    def row(self, object_id: int) -> dict:
        """Id, area, centroid and bounding box (the instance table's row)."""
        ys, xs = np.nonzero(self.mask)
        top, left, bottom, right = self.bbox
        return {"id": object_id, "area": int(ys.size),
                "centroid_y": round(float(ys.mean()) + top, 2),
                "centroid_x": round(float(xs.mean()) + left, 2),
                "bbox_top": top, "bbox_left": left, "bbox_bottom": bottom,
                "bbox_right": right}


def keep_owned(labels: np.ndarray, area: Region, owned: Region) -> BlockObjects:
    """The objects of ``labels`` (ids of ``area``, e.g. a block and its halo) whose centre
    lies in ``owned`` (the block), with boxes in image coordinates."""
    from scipy import ndimage

    objects = []
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        mask = labels[found] == index
        ys, xs = np.nonzero(mask)
        cy = found[0].start + area.top + ys.mean()
        cx = found[1].start + area.left + xs.mean()
        if owned.top <= cy < owned.bottom and owned.left <= cx < owned.right:
            bbox = (found[0].start + area.top, found[1].start + area.left,
                    found[0].stop + area.top, found[1].stop + area.left)
            objects.append(Object(bbox, mask))
    return BlockObjects(objects)


def paint(region: Region, kept: list[tuple[int, BlockObjects]]) -> np.ndarray:
    """uint32 ids [h, w] of ``region`` from objects of several blocks.

    Args:
        region: the block to paint.
        kept: (first global id, objects) of each block whose objects may reach ``region``;
            a block's objects get ids ``first``, ``first + 1``, ...
    """
    out = np.zeros(region.shape, np.uint32)
    for first, block in kept:
        for k, obj in enumerate(block.objects):
            top, left, bottom, right = obj.bbox
            r0, r1 = max(top, region.top), min(bottom, region.bottom)
            c0, c1 = max(left, region.left), min(right, region.right)
            if r1 <= r0 or c1 <= c0:
                continue
            mask = obj.mask[r0 - top:r1 - top, c0 - left:c1 - left]
            view = out[r0 - region.top:r1 - region.top, c0 - region.left:c1 - region.left]
            view[mask] = first + k
    return out
