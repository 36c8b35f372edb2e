"""Dataset debugging: pictures of what the network is trained on, and objects no anchor fits.

    from mrcnn.tools.debug_data import debug_dataset
    result = debug_dataset(dataset, config, "debug/", augmentation=iaa.Fliplr(0.5))
    print(result)            # the anchor-match table and suggestions
    result.unmatched         # objects no anchor covers at all

For a few images, `debug_dataset` writes PNGs of the ground truth (masks, boxes, class names)
as `load_image_gt` gives it to the network (resized), of augmented samples (masks moved with
the image), and of the positive anchors of the RPN targets (`build_rpn_targets`,
rpn_match == 1, after its random subsampling, as training sees them).

It then checks the anchors against every ground-truth object of up to `check_limit` images.
The RPN labels an anchor positive when its IoU with an object is >= 0.7 (`POSITIVE_IOU`), and
`build_rpn_targets` also forces each object's best anchor positive whatever its IoU. So:

- best IoU >= 0.7: matched; the RPN learns this object from several anchors.
- 0.3 <= best IoU < 0.7: "matched only by the forced best anchor": one positive anchor, a
  weak and badly regressed proposal.
- best IoU < 0.3 (`NEGATIVE_IOU`): "effectively unmatched": the forced anchor barely
  overlaps the object; such objects are the most common silent failure on custom data
  (objects much smaller than the smallest anchor scale, or thinner than the extreme ratio).

Boxes and sizes are in pixels of the molded (resized) image, where the anchors live.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mrcnn.data.ground_truth import load_image_gt
from mrcnn.data.targets import build_rpn_targets
from mrcnn.structures.anchors import anchors_for_config
from mrcnn.structures.boxes import compute_overlaps
from mrcnn.vis import drawing as visualize
from mrcnn.vis.figures import finish, new_subplots

logger = logging.getLogger(__name__)

# build_rpn_targets' thresholds (matterport's): an anchor is positive at IoU >= 0.7 with an
# object and negative below 0.3 with every object.
POSITIVE_IOU = 0.7
NEGATIVE_IOU = 0.3


@dataclass
class ObjectMatch:
    """How well the anchors fit one ground-truth object.

    Attributes:
        image_id: internal image id.
        source_id: the image's id in its source (e.g. the COCO image id or VIA file name).
        class_id: internal class id.
        class_name: its name.
        box: (y1, x1, y2, x2) pixels of the molded image.
        best_iou: the highest IoU of any anchor with the box.
        best_anchor: (y1, x1, y2, x2) pixels of that anchor.
    """

    image_id: int
    source_id: Any
    class_id: int
    class_name: str
    box: tuple[int, int, int, int]
    best_iou: float
    best_anchor: tuple[float, float, float, float]

    @property
    def height(self) -> int:
        return int(self.box[2] - self.box[0])

    @property
    def width(self) -> int:
        return int(self.box[3] - self.box[1])

    @property
    def status(self) -> str:
        """"matched", "forced" (only the forced best anchor) or "unmatched"."""
        if self.best_iou >= POSITIVE_IOU:
            return "matched"
        return "forced" if self.best_iou >= NEGATIVE_IOU else "unmatched"


@dataclass
class DebugDataResult:
    """What `debug_dataset` found and wrote.

    Attributes:
        objects: every non-crowd object of the checked images, with its best anchor IoU.
        checked_images: internal ids of the images checked against the anchors.
        positive_anchors: {image id: positive anchors drawn} for the drawn images.
        files: the PNG files written.
        suggestions: config changes that would help the badly matched objects.
    """

    objects: list[ObjectMatch] = field(default_factory=list)
    checked_images: list[int] = field(default_factory=list)
    positive_anchors: dict[int, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    @property
    def matched(self) -> list[ObjectMatch]:
        return [o for o in self.objects if o.status == "matched"]

    @property
    def forced(self) -> list[ObjectMatch]:
        """Objects matched only by the forced best anchor (0.3 <= best IoU < 0.7)."""
        return [o for o in self.objects if o.status == "forced"]

    @property
    def unmatched(self) -> list[ObjectMatch]:
        """Objects effectively unmatched (best IoU < 0.3)."""
        return [o for o in self.objects if o.status == "unmatched"]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (JSON-serializable)."""
        out = asdict(self)
        for obj, entry in zip(self.objects, out["objects"], strict=True):
            entry.update(status=obj.status, height=obj.height, width=obj.width,
                         source_id=str(obj.source_id))
        return out

    def __str__(self) -> str:
        lines = [f"Anchor check: {len(self.objects)} objects in {len(self.checked_images)} "
                 f"images (boxes in molded-image pixels; RPN positive IoU {POSITIVE_IOU})",
                 f"  matched (best anchor IoU >= {POSITIVE_IOU}): {len(self.matched)}",
                 f"  matched only by the forced best anchor ({NEGATIVE_IOU} <= IoU < "
                 f"{POSITIVE_IOU}): {len(self.forced)}",
                 f"  effectively unmatched (IoU < {NEGATIVE_IOU}): {len(self.unmatched)}"]
        bad = sorted(self.forced + self.unmatched, key=lambda o: o.best_iou)
        if bad:
            lines.append(f"{'image':>5}  {'source id':<14} {'class':<12} "
                         f"{'box (y1, x1, y2, x2)':<22} {'h x w':>9}  {'best IoU':>8}  status")
            for o in bad:
                box = "(" + ", ".join(str(int(v)) for v in o.box) + ")"
                lines.append(f"{o.image_id:>5}  {str(o.source_id)[:14]:<14} "
                             f"{o.class_name[:12]:<12} {box:<22} "
                             f"{f'{o.height} x {o.width}':>9}  {o.best_iou:8.3f}  "
                             f"{'forced anchor only' if o.status == 'forced' else 'UNMATCHED'}")
        if self.suggestions:
            lines.append("Suggestions:")
            lines.extend(f"  - {s}" for s in self.suggestions)
        if self.files:
            lines.append(f"Wrote {len(self.files)} pictures to "
                         f"{os.path.dirname(self.files[0]) or '.'}")
        return "\n".join(lines)


def best_anchor_ious(gt_boxes: np.ndarray, anchors: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The best IoU of any anchor with each box, and the index of that anchor.

    Args:
        gt_boxes: [N, (y1, x1, y2, x2)] pixel boxes.
        anchors: [A, (y1, x1, y2, x2)] pixel anchors, A > 0.

    Returns:
        best_iou: [N] float; best_index: [N] int indices into `anchors`.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    anchors = np.asarray(anchors, dtype=np.float64)
    if anchors.ndim != 2 or anchors.shape[1] != 4 or not len(anchors):
        raise ValueError(f"anchors must be a non-empty [A, 4] array, got shape {anchors.shape}")
    if not len(gt_boxes):
        return np.zeros([0]), np.zeros([0], dtype=np.int64)
    overlaps = compute_overlaps(gt_boxes, anchors)  # [N, A]
    best = np.argmax(overlaps, axis=1)
    return overlaps[np.arange(len(gt_boxes)), best], best


def _fmt(values: Any) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def suggest_anchor_changes(objects: Sequence[ObjectMatch], config: Any) -> list[str]:
    """Config changes that would give the badly matched objects (best IoU < 0.7) anchors.

    Looks at their size (sqrt of the box area) against RPN_ANCHOR_SCALES and at their aspect
    ratio (width / height, as RPN_ANCHOR_RATIOS) against the configured ratios.
    """
    bad = [o for o in objects if o.status != "matched" and o.height > 0 and o.width > 0]
    if not bad:
        return []
    scales = sorted(float(s) for s in config.RPN_ANCHOR_SCALES)
    ratios = sorted(float(r) for r in config.RPN_ANCHOR_RATIOS)
    sizes = np.array([math.sqrt(o.height * o.width) for o in bad])
    aspect = np.array([o.width / o.height for o in bad])
    out = []
    small = sizes < scales[0] / math.sqrt(2)
    if small.any():
        smallest = float(sizes[small].min())
        new_first = 2.0 ** math.floor(math.log2(max(smallest, 1.0)))
        factor = scales[0] / new_first
        proposal = _fmt(max(1.0, round(s / factor)) for s in scales)
        out.append(f"{int(small.sum())} object(s) are smaller than the smallest anchor scale "
                   f"{scales[0]:g} (down to {smallest:.1f} px): shift RPN_ANCHOR_SCALES down, "
                   f"e.g. {proposal}, or enlarge the images (IMAGE_MIN_DIM/IMAGE_MAX_DIM, now "
                   f"{config.IMAGE_MIN_DIM}/{config.IMAGE_MAX_DIM})")
    large = sizes > scales[-1] * math.sqrt(2)
    if large.any():
        out.append(f"{int(large.sum())} object(s) are larger than the largest anchor scale "
                   f"{scales[-1]:g} (up to {float(sizes[large].max()):.0f} px): raise "
                   "RPN_ANCHOR_SCALES or shrink the images")
    # One ratio step of matterport's (0.5, 1, 2) is a factor of 2: an object further than
    # sqrt(2) beyond the extreme ratio fits no anchor shape.
    thin = aspect < ratios[0] / math.sqrt(2)
    wide = aspect > ratios[-1] * math.sqrt(2)
    for mask, word, pick, extreme in ((thin, "tall/thin", np.min, ratios[0]),
                                      (wide, "wide/flat", np.max, ratios[-1])):
        if mask.any():
            target = float(pick(aspect[mask]))
            new_ratio = 2.0 ** round(math.log2(target))
            proposal = _fmt(sorted({*ratios, new_ratio}))
            out.append(f"{int(mask.sum())} {word} object(s) (width/height as extreme as "
                       f"{target:.3g}; the extreme anchor ratio is {extreme:g}): add a ratio "
                       f"to RPN_ANCHOR_RATIOS, e.g. {proposal} (this changes the RPN head's "
                       "shape: its pre-trained weights no longer load)")
    explained = small | large | thin | wide
    rest = int((~explained).sum())
    if rest:
        stride = ("" if int(config.RPN_ANCHOR_STRIDE) == 1 else
                  f", or RPN_ANCHOR_STRIDE 1 (now {config.RPN_ANCHOR_STRIDE})")
        out.append(f"{rest} object(s) lie between the anchor scales {_fmt(scales)}, ratios "
                   f"{_fmt(ratios)} and positions (BACKBONE_STRIDES "
                   f"{_fmt(config.BACKBONE_STRIDES)}): scales or ratios closer to their sizes"
                   f"{stride} would fit them better")
    return out


def _class_name(dataset: Any, class_id: int) -> str:
    names = list(getattr(dataset, "class_names", []))
    cid = abs(int(class_id))
    name = names[cid] if cid < len(names) else str(cid)
    return f"crowd: {name}" if class_id < 0 else name


def check_image(dataset: Any, config: Any, image_id: int, class_ids: np.ndarray,
                boxes: np.ndarray, image_shape: Sequence[int]) -> list[ObjectMatch]:
    """ObjectMatch of every non-crowd object of one molded image (boxes in its pixels)."""
    keep = np.asarray(class_ids) > 0
    anchors = anchors_for_config(config, tuple(int(v) for v in image_shape[:2]))
    best_iou, best_index = best_anchor_ious(np.asarray(boxes)[keep], anchors)
    source_id = dataset.image_info[image_id].get("id", image_id)
    return [ObjectMatch(image_id=int(image_id), source_id=source_id, class_id=int(c),
                        class_name=_class_name(dataset, int(c)),
                        box=tuple(int(v) for v in b), best_iou=float(iou),
                        best_anchor=tuple(float(v) for v in anchors[a]))
            for c, b, iou, a in zip(np.asarray(class_ids)[keep], np.asarray(boxes)[keep],
                                    best_iou, best_index, strict=True)]


def _draw_ground_truth(dataset: Any, image: np.ndarray, class_ids: np.ndarray,
                       boxes: np.ndarray, masks: np.ndarray, title: str, ax: Any) -> None:
    captions = [_class_name(dataset, int(c)) for c in class_ids]
    visualize.display_instances(image, boxes, masks, np.abs(class_ids),
                                list(getattr(dataset, "class_names", [])) or ["BG"],
                                title=title, ax=ax, captions=captions)


def _draw_anchors(image: np.ndarray, anchors: np.ndarray, gt_boxes: np.ndarray, title: str,
                  path: str) -> None:
    import matplotlib.patches as patches

    fig, ax = new_subplots(1, 1, (8, 8), path)
    if len(anchors):
        visualize.draw_boxes(image, boxes=anchors, title=title, ax=ax)
    else:
        ax.imshow(np.asarray(image).astype(np.uint8))
        ax.set_title(title)
        ax.axis("off")
    for y1, x1, y2, x2 in gt_boxes:  # ground truth on top, thick white
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=3,
                                       edgecolor="white", facecolor="none"))
    finish(fig, path)


def draw_image(dataset: Any, config: Any, image_id: int, output_dir: str,
               augmentation: Any = None, augment_samples: int = 3, seed: int = 0
               ) -> tuple[list[str], int]:
    """Write the ground-truth, augmentation and positive-anchor PNGs of one image.

    The pictures are drawn without pyplot and written atomically (`mrcnn.vis.figures`).

    Returns:
        (paths written, number of positive anchors drawn).
    """
    image, _, class_ids, boxes, masks = load_image_gt(dataset, config, image_id)
    source = str(dataset.image_info[image_id].get("id", image_id))
    stem = f"image{image_id:04d}"
    paths = []

    paths.append(os.path.join(output_dir, f"{stem}_gt.png"))
    fig, ax = new_subplots(1, 1, (8, 8), paths[-1])
    _draw_ground_truth(dataset, image, class_ids, boxes, masks,
                       f"{source}: ground truth ({len(class_ids)} objects)", ax)
    finish(fig, paths[-1])

    if augmentation is not None and augment_samples > 0:
        cols = augment_samples + 1
        paths.append(os.path.join(output_dir, f"{stem}_augmented.png"))
        fig, axes = new_subplots(1, cols, (5 * cols, 5), paths[-1], squeeze=False)
        _draw_ground_truth(dataset, image, class_ids, boxes, masks, "original", axes[0, 0])
        for k in range(augment_samples):
            aug = load_image_gt(dataset, config, image_id, augmentation=augmentation,
                                rng=np.random.default_rng([seed, image_id, k]))
            _draw_ground_truth(dataset, aug[0], aug[2], aug[3], aug[4], f"augmented #{k + 1}",
                               axes[0, k + 1])
        finish(fig, paths[-1])

    anchors = anchors_for_config(config, image.shape[:2])
    rpn_match, _ = build_rpn_targets(image.shape, anchors, class_ids, boxes, config, rng=seed)
    positive = anchors[rpn_match == 1]
    paths.append(os.path.join(output_dir, f"{stem}_anchors.png"))
    _draw_anchors(image, positive, boxes[class_ids > 0],
                  f"{source}: {len(positive)} positive anchors (white: ground truth)", paths[-1])
    return paths, int(len(positive))


def debug_dataset(dataset: Any, config: Any, output_dir: str,
                  image_ids: Sequence[int] | None = None, count: int = 4,
                  augmentation: Any = None, augment_samples: int = 3,
                  check_limit: int | None = None, seed: int = 0) -> DebugDataResult:
    """Draw a few images' ground truth, augmentations and positive anchors; check the anchors.

    Args:
        dataset: a prepared `mrcnn.data.dataset.Dataset`.
        config: the `Config` training will use (resizing, anchors, RPN settings).
        output_dir: folder for the PNGs (created).
        image_ids: internal ids of the images to draw (default: the first `count`).
        count: images to draw when `image_ids` is None.
        augmentation: an imgaug augmenter; None draws no augmented samples.
        augment_samples: augmented samples per drawn image.
        check_limit: check the anchors on the first `check_limit` images of the dataset
            (None or 0: all images); drawn images are always checked.
        seed: seed of the augmentations and of the RPN target subsampling.

    Returns:
        A `DebugDataResult`; `print(result)` shows the table (also logged at INFO).

    Raises:
        ValueError: empty dataset, negative `count`, or an image id not in the dataset.
    """
    all_ids = [int(i) for i in dataset.image_ids]
    if not all_ids:
        raise ValueError("debug_dataset: the dataset has no image (did you call prepare()?)")
    if count < 0 or augment_samples < 0:
        raise ValueError(f"count and augment_samples must be >= 0, got {count}, "
                         f"{augment_samples}")
    drawn = all_ids[:count] if image_ids is None else [int(i) for i in image_ids]
    unknown = [i for i in drawn if i not in set(all_ids)]
    if unknown:
        raise ValueError(f"debug_dataset: image ids {unknown} are not in the dataset "
                         f"(0..{len(all_ids) - 1})")
    os.makedirs(output_dir, exist_ok=True)
    result = DebugDataResult()
    for image_id in drawn:
        paths, positives = draw_image(dataset, config, image_id, output_dir, augmentation,
                                      augment_samples, seed)
        result.files.extend(paths)
        result.positive_anchors[image_id] = positives
    checked = all_ids[:check_limit] if check_limit else all_ids
    checked = checked + [i for i in drawn if i not in set(checked)]
    for image_id in checked:
        image, _, class_ids, boxes, _ = load_image_gt(dataset, config, image_id)
        result.objects.extend(check_image(dataset, config, image_id, class_ids, boxes,
                                          image.shape))
    result.checked_images = checked
    result.suggestions = suggest_anchor_changes(result.objects, config)
    logger.info("anchor check: %d objects, %d matched only by the forced best anchor, %d "
                "effectively unmatched; %d pictures in %s", len(result.objects),
                len(result.forced), len(result.unmatched), len(result.files), output_dir)
    return result
