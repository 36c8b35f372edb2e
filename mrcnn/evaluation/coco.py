"""COCO-style evaluation: detections as COCO result dicts, scored by pycocotools' COCOeval.

`build_coco_results` turns one image's detections into COCO result dicts (compressed RLE
masks) and `evaluate_coco` runs a model over dataset images and scores them with COCOeval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.data.formats.common import quiet

logger = logging.getLogger(__name__)

# COCOeval.stats in the order summarize() computes them.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def build_coco_results(dataset: Any, image_ids: Sequence[int] | int, rois: np.ndarray,
                       class_ids: np.ndarray, scores: np.ndarray,
                       masks: np.ndarray | None) -> list[dict]:
    """COCO result dicts for the detections of one image (matterport's function).

    Args:
        dataset: the dataset whose classes the class ids refer to (source "coco").
        image_ids: the COCO (source) id of the image, or a one-element list of it.
        rois: [N, (y1, x1, y2, x2)] pixel boxes in the original image (y2, x2 exclusive).
        class_ids: [N] internal class ids.
        scores: [N] confidences.
        masks: [height, width, N] masks of the original image size, or None (boxes only).

    Returns:
        One dict per detection: image_id, category_id (the source id of the class), bbox
        [x, y, width, height], score and, with masks, segmentation (compressed RLE whose
        counts are a str, so the list can be written as JSON).
    """
    ids = [image_ids] if np.ndim(image_ids) == 0 else list(image_ids)
    rois = np.asarray(rois).reshape(-1, 4)
    if len(ids) != 1 and len(rois):
        raise ValueError(f"build_coco_results takes the detections of one image, got "
                         f"image_ids {ids}")
    if not len(class_ids) == len(scores) == len(rois) or (
            masks is not None and np.shape(masks)[-1] != len(rois)):
        raise ValueError(f"rois ({len(rois)}), class_ids ({len(class_ids)}), scores "
                         f"({len(scores)}) and masks ({np.shape(masks)}) differ in count")
    source = getattr(dataset, "source", "coco")
    results = []
    for i in range(len(rois)):
        y1, x1, y2, x2 = (float(v) for v in rois[i])
        result = {"image_id": ids[0],
                  "category_id": int(dataset.get_source_class_id(int(class_ids[i]), source)),
                  "bbox": [x1, y1, x2 - x1, y2 - y1],
                  "score": float(scores[i])}
        if masks is not None:
            rle = mask_utils.encode(np.asfortranarray(masks[:, :, i].astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            result["segmentation"] = rle
        results.append(result)
    return results


def evaluate_coco(model: Any, dataset: Any, coco: COCO, eval_type: str = "bbox",
                  limit: int = 0, image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """Run `model.detect` over dataset images and score the detections with COCOeval.

    Args:
        model: an inference-mode `MaskRCNN` (anything with `detect(images)` and `config`).
        dataset: a prepared dataset loaded from `coco`.
        coco: the pycocotools COCO object holding the ground truth.
        eval_type: "bbox" or "segm".
        limit: evaluate only the first `limit` images (0: all).
        image_ids: internal image ids to evaluate (default all of the dataset).

    Returns:
        The 12 COCOeval summary numbers keyed by STAT_NAMES (AP = AP@[.5:.95], AP50, AP75,
        APs/APm/APl by area, AR1/AR10/AR100 by detections per image, ARs/ARm/ARl); -1 where
        COCO has nothing to measure. Without any detection every number is 0.
    """
    if eval_type not in ("bbox", "segm"):
        raise ValueError(f"eval_type must be 'bbox' or 'segm', got {eval_type!r}")
    ids = list(dataset.image_ids if image_ids is None else image_ids)
    if limit:
        ids = ids[:int(limit)]
    if not ids:
        raise ValueError("evaluate_coco: no image to evaluate")
    coco_image_ids = [dataset.image_info[i]["id"] for i in ids]
    batch = max(1, int(getattr(model.config, "BATCH_SIZE", 1)))
    start_time = time.time()
    results: list[dict] = []
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        detections = model.detect([dataset.load_image(i) for i in chunk], verbose=0)
        for image_id, r in zip(chunk, detections, strict=True):
            masks = r.get("masks")
            if masks is None and eval_type == "segm":
                raise ValueError("evaluate_coco(eval_type='segm'): the model returned no masks")
            results.extend(build_coco_results(dataset, [dataset.image_info[image_id]["id"]],
                                              r["rois"], r["class_ids"], r["scores"], masks))
    logger.info("detection on %d images took %.1f s", len(ids), time.time() - start_time)
    if not results:
        logger.warning("evaluate_coco: the model detected nothing; every score is 0")
        return dict.fromkeys(STAT_NAMES, 0.0)
    return score_coco(coco, results, eval_type, coco_image_ids)[0]


def score_coco(coco: COCO, results: list[dict], eval_type: str,
               coco_image_ids: Sequence[int]) -> tuple[dict[str, float], np.ndarray | None]:
    """Score COCO result dicts against `coco` with pycocotools' COCOeval.

    For "segm" the results' boxes are left out so that COCOeval takes each detection's area
    (for APs/APm/APl) from its mask, as Detectron2 does, not from its box.

    Args:
        coco: the ground truth.
        results: COCO result dicts (`build_coco_results`); "segm" needs "segmentation".
        eval_type: "bbox" or "segm".
        coco_image_ids: the COCO ids of the images evaluated (images without detections
            count too).

    Returns:
        (the 12 summary numbers keyed by STAT_NAMES, COCOeval's accumulated precision
        [iou thresholds (10), recall points (101), classes, areas (4), max dets (3)], -1
        where undefined). Without any result every number is 0 and the precision is None.

    Raises:
        ValueError: bad `eval_type`, or "segm" results without masks.
    """
    if eval_type not in ("bbox", "segm"):
        raise ValueError(f"eval_type must be 'bbox' or 'segm', got {eval_type!r}")
    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0), None
    if eval_type == "segm":
        if any("segmentation" not in r for r in results):
            raise ValueError("score_coco(eval_type='segm'): results without 'segmentation'")
        results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    coco_results, _ = quiet(coco.loadRes, results)
    evaluator = COCOeval(coco, coco_results, eval_type)
    evaluator.params.imgIds = list(coco_image_ids)
    _, text = quiet(lambda: (evaluator.evaluate(), evaluator.accumulate(),
                             evaluator.summarize()))
    logger.info("COCOeval %s on %d images:\n%s", eval_type, len(coco_image_ids), text.strip())
    stats = {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}
    return stats, np.asarray(evaluator.eval["precision"])


def dataset_as_coco(dataset: Any, image_ids: Sequence[int]) -> COCO:
    """Ground truth of any prepared dataset as a pycocotools COCO object, for COCOeval.

    Images are keyed by their internal id and categories by their internal class id (1, 2,
    ...); masks come from `dataset.load_mask` at the original image size (RLE), negative class
    ids become crowd regions, and empty masks are left out.

    Args:
        dataset: a prepared `mrcnn.data.dataset.Dataset`.
        image_ids: the internal ids of the images to include.

    Returns:
        An indexed COCO object.
    """
    images, annotations = [], []
    for image_id in image_ids:
        masks, class_ids = dataset.load_mask(int(image_id))
        masks = np.asarray(masks, dtype=bool)
        info = dataset.image_info[int(image_id)]
        height = int(info.get("height") or masks.shape[0])
        width = int(info.get("width") or masks.shape[1])
        images.append({"id": int(image_id), "height": height, "width": width})
        for k in range(masks.shape[-1] if masks.ndim == 3 else 0):
            if not masks[:, :, k].any() or int(class_ids[k]) == 0:
                continue
            rle = mask_utils.encode(np.asfortranarray(masks[:, :, k].astype(np.uint8)))
            annotations.append({
                "id": len(annotations) + 1, "image_id": int(image_id),
                "category_id": abs(int(class_ids[k])), "iscrowd": int(class_ids[k] < 0),
                "segmentation": rle, "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)]})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": i, "name": str(n)}
                                   for i, n in enumerate(dataset.class_names) if i > 0]}
    quiet(coco.createIndex)
    return coco
