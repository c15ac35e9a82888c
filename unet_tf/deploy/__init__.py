"""Deployment: SavedModel and TFLite export with a measured parity check.

Examples:
    >>> from unet_tf.deploy import export
    >>> report = export("saved_models/pets", "saved_models/pets-export")  # doctest: +SKIP
"""

from unet_tf.deploy.exporter import LABELS_FILE, PARITY_FILE, export
from unet_tf.deploy.parity import ParityError, format_parity, parity_check
from unet_tf.deploy.tflite import ExportError, convert_tflite, tflite_file_name

__all__ = [
    "LABELS_FILE",
    "PARITY_FILE",
    "ExportError",
    "ParityError",
    "convert_tflite",
    "export",
    "format_parity",
    "parity_check",
    "tflite_file_name",
]
