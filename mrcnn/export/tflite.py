"""TFLite conversion of an exported serving SavedModel.

Mask R-CNN does not fit TFLite's built-in op set: converting with built-in ops only fails on
`tf.CropAndResize` (the ROIAlign of `PyramidROIAlign`, for the classifier and the mask head),
`tf.InvertPermutation` (ROIAlign's restoring of the ROI order), `tf.EnsureShape`
(`DetectionLayer`), and, in the serving wrapper, the float64 scale arithmetic that reproduces
the host's resize rounding. With TensorFlow ops allowed (`SELECT_TF_OPS`, the "Flex" delegate)
the conversion succeeds; the interpreter then needs the Flex delegate (the
`tensorflow` pip package has it, or a TFLite build with `tensorflow-lite-select-tf-ops`).
"""

from __future__ import annotations

import logging
import os
import re

from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)


class TFLiteConversionError(ValueError):
    """The SavedModel needs TensorFlow ops that TFLite's built-in set lacks; `ops` lists
    them."""

    def __init__(self, ops: list[str], message: str) -> None:
        super().__init__(message)
        self.ops = ops


def convert_to_tflite(export_dir: str, output_path: str, select_tf_ops: bool = True) -> str:
    """Convert an exported serving SavedModel to a `.tflite` file (written atomically).

    Args:
        export_dir: a SavedModel written by `mrcnn.export.export_saved_model`.
        output_path: the `.tflite` file to write.
        select_tf_ops: allow TensorFlow ops (Flex). With False only TFLite's built-in ops
            are allowed, which Mask R-CNN cannot meet (see the module doc).

    Returns:
        output_path.

    Raises:
        TFLiteConversionError: built-in ops only, naming the TensorFlow ops that block it.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(export_dir))
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    try:
        flatbuffer = converter.convert()
    except Exception as err:  # the converter raises its own ConverterError
        text = str(err)
        match = re.search(r"TF Select ops: ([^\n]+)", text)
        needed = sorted({op.strip() for op in match.group(1).split(",")}) if match else []
        if not needed:
            raise
        raise TFLiteConversionError(
            needed, f"TFLite's built-in ops cannot run this model; it needs the TensorFlow ops "
            f"{', '.join(needed)} (convert with select_tf_ops=True and run with the Flex "
            "delegate)") from None
    with atomic_write(output_path) as tmp, open(tmp, "wb") as f:
        f.write(flatbuffer)
    logger.info("Wrote %s (%.1f MB, %s ops)", output_path, len(flatbuffer) / 1e6,
                "built-in + Flex" if select_tf_ops else "built-in")
    return output_path
