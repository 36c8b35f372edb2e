"""`mrcnn export --weights W --output DIR`: write a serving SavedModel of an inference model.

The SavedModel's `serving_default` signature takes uint8 images of any size and returns
detections in the input image's pixels (see `mrcnn.export.serving`); the class names and the
config are recorded in its assets.
"""

from __future__ import annotations

import argparse

from mrcnn.tools.commands.detect import class_names_for
from mrcnn.tools.common import UsageError
from mrcnn.tools.models import inference_model


def run(args: argparse.Namespace) -> int:
    """Build the inference model, load --weights, export to --output; returns 0.

    Raises:
        FileNotFoundError: the weights file is missing.
        UsageError: the output directory exists and is not empty, or the config cannot be
            served (the export's own check).
    """
    model, config = inference_model(args, None)
    names = None
    if args.class_names or getattr(config, "CLASS_NAMES", None):
        names = class_names_for(args, None, config)
    try:
        path = model.export(args.output, class_names=names)
    except (ValueError, FileExistsError) as e:
        raise UsageError(str(e)) from None
    print(f"Exported SavedModel (signature serving_default) -> {path}")
    return 0
