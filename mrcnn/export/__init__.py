"""Serving export: a SavedModel that takes uint8 images and returns detections in pixels.

    from mrcnn.export import export_saved_model
"""

from mrcnn.export.serving import SIGNATURE_KEY, export_saved_model, read_class_names

__all__ = ["SIGNATURE_KEY", "export_saved_model", "read_class_names"]
