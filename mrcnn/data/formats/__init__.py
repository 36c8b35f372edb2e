"""Datasets read from annotation formats on disk: COCO instances JSON and VIA polygon JSON.

    from mrcnn.data.formats import CocoDataset, ViaDataset

Both loaders check every image and annotation when they load, so bad data fails at once with
a message naming the file, image and annotation, instead of deep inside training. With
`skip_invalid=True` bad items are skipped instead, logged, and counted in `dataset.skipped`.
"""

from mrcnn.data.formats.coco import CocoDataset
from mrcnn.data.formats.common import InvalidAnnotation, read_json, skip_or_raise
from mrcnn.data.formats.via import ViaDataset

__all__ = ["CocoDataset", "InvalidAnnotation", "ViaDataset", "read_json", "skip_or_raise"]
