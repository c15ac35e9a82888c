"""Images larger than memory: lazy readers, blocks with context, stitching, OME-Zarr, Dask.

The whole-slide path of ``unet-tf predict`` and ``unet-tf instances`` for TIFF / OME-TIFF /
Zarr inputs or an ``.ome.zarr`` output (docs: "Whole-slide images").

Examples:
    >>> from unet_tf.wsi import segment_large
    >>> segment_large("nuclei", "slide.ome.tif", "slide.ome.zarr",
    ...               instances=True)  # doctest: +SKIP
"""

from unet_tf.wsi.readers import LazyImage, open_image
from unet_tf.wsi.runner import segment_large

__all__ = ["LazyImage", "open_image", "segment_large"]
