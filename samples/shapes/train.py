"""Train Mask R-CNN on the synthetic shapes data, evaluate mAP@0.5, save detection pictures.

    python samples/shapes/train.py            # the demo: about 10 minutes on 2 CPU cores
    python samples/shapes/train.py --quick    # a one-minute smoke run
    python samples/shapes/train.py --weights last --epochs 12   # continue the last run

Everything is generated on the fly (no downloads). The run directory (under --logs) gets the
TensorBoard logs, one checkpoint per epoch and `detections.png`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mrcnn import model as modellib  # noqa: E402
from mrcnn import visualize  # noqa: E402
from mrcnn.engine.callbacks import WarmupLRSchedule  # noqa: E402
from mrcnn.engine.runs import exclude_for, resolve_weights  # noqa: E402
from mrcnn.evaluation.evaluator import evaluate_dataset  # noqa: E402
from samples.shapes.shapes import ShapesConfig, ShapesDataset  # noqa: E402

logger = logging.getLogger("shapes")


class DemoConfig(ShapesConfig):
    """ShapesConfig sized to train from scratch on a laptop CPU in about 10 minutes.

    ResNet-50 at 128 px, batch 8, with slimmer heads than matterport's defaults: a 128-channel
    pyramid, 512-wide classifier layers and 14x14 masks (7x7 mask pooling). Shapes are simple;
    these sizes cost little accuracy and make a step several times cheaper.

    Trained from scratch, the mask head learns last: the global gradient norm stays far above
    GRADIENT_CLIP_NORM, and the mask head's share of it is small, so its clipped steps are
    tiny (its loss sat near ln 2 for 360 steps). Weighting the mask loss 3x brought it from
    0.50 to 0.37 after 150 steps without slowing the other losses. MIXED_PRECISION="auto"
    computes in bfloat16 on CPUs with AMX-bf16 or AVX512-BF16 (the same losses after 150
    steps as float32, a faster step) and in float32 elsewhere.
    """

    NAME = "shapes"
    BACKBONE = "resnet50"
    IMAGES_PER_GPU = 8
    STEPS_PER_EPOCH = 50
    VALIDATION_STEPS = 2
    LEARNING_RATE = 0.005
    MIXED_PRECISION = "auto"
    LOSS_WEIGHTS = {"rpn_class_loss": 1.0, "rpn_bbox_loss": 1.0, "mrcnn_class_loss": 1.0,
                    "mrcnn_bbox_loss": 1.0, "mrcnn_mask_loss": 3.0}
    TOP_DOWN_PYRAMID_SIZE = 128
    FPN_CLASSIF_FC_LAYERS_SIZE = 512
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    TRAIN_ROIS_PER_IMAGE = 32
    POST_NMS_ROIS_TRAINING = 500
    POST_NMS_ROIS_INFERENCE = 250
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    MAX_GT_INSTANCES = 10
    DETECTION_MAX_INSTANCES = 10
    DETECTION_MIN_CONFIDENCE = 0.5
    MINI_MASK_SHAPE = (28, 28)
    RANDOM_SEED = 0


# 20 x 50 steps: about 8.5 minutes of training on 2 CPU cores with bfloat16.
DEMO_EPOCHS = 20


class DemoInferenceConfig(DemoConfig):
    IMAGES_PER_GPU = 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="all",
                   help="heads, 3+, 4+, 5+, all, or a regex of layer names (default: all)")
    p.add_argument("--epochs", type=int, default=None, help="train up to this epoch")
    p.add_argument("--steps", type=int, default=None, help="steps per epoch")
    p.add_argument("--weights", default=None,
                   help="start from: last, coco, imagenet, none or a .h5 path (default: none)")
    p.add_argument("--backbone", default=None, choices=["resnet50", "resnet101"])
    p.add_argument("--logs", default=os.path.join(ROOT, "logs"), help="run directory root")
    p.add_argument("--eval-images", type=int, default=50, help="held-out images for mAP")
    p.add_argument("--train-images", type=int, default=1000)
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--quick", action="store_true", help="a one-minute smoke run")
    return p.parse_args(argv)


# matterport's network sizes: pretrained files (COCO, ImageNet) only load into these.
PRETRAINED_SIZES = {"TOP_DOWN_PYRAMID_SIZE": 256, "FPN_CLASSIF_FC_LAYERS_SIZE": 1024,
                    "MASK_POOL_SIZE": 14, "MASK_SHAPE": [28, 28], "MINI_MASK_SHAPE": (56, 56)}


def make_configs(args):
    overrides = {}
    weights = (args.weights or "").lower()
    if weights in ("coco", "imagenet"):
        overrides.update(PRETRAINED_SIZES)
        # mask_rcnn_coco.h5 is a ResNet-101; Keras' ImageNet file is a ResNet-50.
        overrides["BACKBONE"] = "resnet101" if weights == "coco" else "resnet50"
    if args.backbone:
        overrides["BACKBONE"] = args.backbone
    if args.steps:
        overrides["STEPS_PER_EPOCH"] = args.steps
    if args.lr:
        overrides["LEARNING_RATE"] = args.lr
    if args.quick:
        overrides.setdefault("STEPS_PER_EPOCH", 3)
        overrides["VALIDATION_STEPS"] = 1
        overrides["IMAGES_PER_GPU"] = 2
    infer_overrides = {k: v for k, v in overrides.items() if k != "IMAGES_PER_GPU"}
    # mAP ranks every detection by score, as COCOeval does, so it is measured without the
    # confidence cut; the picture shows detections above DETECTION_MIN_CONFIDENCE.
    eval_overrides = {**infer_overrides, "DETECTION_MIN_CONFIDENCE": 0.0}
    return (DemoConfig.from_dict(overrides), DemoInferenceConfig.from_dict(infer_overrides),
            DemoInferenceConfig.from_dict(eval_overrides))


def main(argv=None) -> float:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    config, infer_config, eval_config = make_configs(args)
    epochs = args.epochs or (1 if args.quick else DEMO_EPOCHS)
    size = config.IMAGE_SHAPE[0]

    train_set = ShapesDataset()
    train_set.load_shapes(50 if args.quick else args.train_images, size, size, seed=1)
    train_set.prepare()
    val_set = ShapesDataset()
    val_set.load_shapes(min(10, args.eval_images) if args.quick else args.eval_images,
                        size, size, seed=2)
    val_set.prepare()

    model = modellib.MaskRCNN("training", config, args.logs)
    path = resolve_weights(args.weights, args.logs, config.NAME) if args.weights else None
    if path:
        # COCO's class-count-dependent heads are not loaded (engine.runs.HEAD_LAYERS).
        exclude = exclude_for(args.weights, None, config.NUM_CLASSES)
        report = model.load_weights(path, by_name=True, exclude=exclude)
        logger.info("Loaded %s: %s", path, report)
    start = time.time()
    # Linear warmup, then cosine decay to 5% of the peak by the last epoch: the network ends
    # training at a low rate, which gives a markedly better final model than a constant rate.
    schedule = WarmupLRSchedule(warmup_steps=min(20, config.STEPS_PER_EPOCH), warmup_factor=0.1,
                                decay="cosine", total=epochs, unit="epoch",
                                min_lr=0.05 * config.LEARNING_RATE)
    model.train(train_set, val_set, learning_rate=config.LEARNING_RATE, epochs=epochs,
                layers=args.layers, custom_callbacks=[schedule], verbose=2)
    train_seconds = time.time() - start

    checkpoint = model.find_last()
    evaluator = modellib.MaskRCNN("inference", eval_config, args.logs)
    evaluator.load_weights(checkpoint, by_name=True)
    start = time.time()
    score = evaluate_dataset(evaluator, val_set, eval_config, iou_thresholds=(0.5,)).map50
    eval_seconds = time.time() - start
    inference = modellib.MaskRCNN("inference", infer_config, args.logs)
    inference.load_weights(checkpoint, by_name=True)

    shown = val_set.image_ids[:8]
    images = [val_set.load_image(i) for i in shown]
    results = [inference.detect([im])[0] for im in images]
    picture = os.path.join(model.log_dir, "detections.png")
    visualize.detections_grid(images, results, val_set.class_names, picture)

    logger.info("trained %d epochs x %d steps in %.0f s; checkpoint %s", epochs,
                config.STEPS_PER_EPOCH, train_seconds, checkpoint)
    print(f"mAP@0.5 on {len(val_set.image_ids)} held-out images: {score:.3f} "
          f"(evaluated in {eval_seconds:.0f} s)")
    print(f"detections: {picture}")
    return score


if __name__ == "__main__":
    main()
