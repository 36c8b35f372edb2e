"""Benchmark of Mask R-CNN training steps and detect() on the shapes config.

For each backbone (ResNet-101 and ResNet-50 by default) it builds matterport's ShapesConfig
model (batch 8, 128 px images, 4 classes), then prints a table of:
  - the median seconds per training step with layers="heads" and with layers="all"
    (`train_on_batch` on one fixed batch from the DataGenerator, after one warm-up step that
    traces the graph; data loading is not included);
  - the median seconds per `detect()` call on one 128 px image (inference mode, batch 1,
    after a warm-up call; includes molding and unmolding);
  - the FLOPs per step, estimated ANALYTICALLY from the layer shapes: 2 x multiply-adds of
    every Conv2D, Conv2DTranspose and Dense layer (backbone, FPN, the shared RPN on each of
    P2-P6, and the heads on TRAIN_ROIS_PER_IMAGE ROIs per image in training,
    POST_NMS_ROIS_INFERENCE ROIs for the classifier and DETECTION_MAX_INSTANCES for the mask
    head in inference). BatchNorm, activations, ROIAlign, NMS and the losses are left out.
    A training step counts the forward pass once plus 2x the forward FLOPs of the layers the
    backward pass goes through (all layers for "all"; FPN, RPN and heads for "heads", whose
    backward pass stops at the frozen backbone).

Numbers are noisy on a shared machine; compare medians on the same machine only. The
weights are random (speed does not depend on them, except detect()'s unmolding of a
handful of detections).

Usage:
    python bench/train_step.py [--repeats 5] [--backbone resnet101|resnet50|both] [--quick]

`--quick` is a smoke run: ResNet-50 only (unless --backbone says otherwise), batch 2,
2 repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from mrcnn import model as modellib  # noqa: E402
from mrcnn.data.generator import DataGenerator  # noqa: E402
from samples.shapes.shapes import ShapesConfig, ShapesDataset  # noqa: E402


# --------------------------------------------------------------------------- FLOPs (analytic)
def _conv_macs(layer: keras.layers.Layer, out_h: int, out_w: int) -> int:
    """Multiply-adds of a Conv2D / Conv2DTranspose / Dense for one output map (or vector)."""
    kernel = layer.kernel.shape
    if isinstance(layer, keras.layers.Dense):
        return int(kernel[0]) * int(kernel[1])
    kh, kw = int(kernel[0]), int(kernel[1])
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # kernel [kh, kw, out, in]: every input pixel scatters kh*kw*out values.
        c_out, c_in = int(kernel[2]), int(kernel[3])
        sh, sw = layer.strides
        return (out_h // sh) * (out_w // sw) * kh * kw * c_in * c_out
    c_in, c_out = int(kernel[2]), int(kernel[3])
    return out_h * out_w * kh * kw * c_in * c_out


def _is_counted(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose
                      | keras.layers.Dense)


def _spatial(shape) -> tuple[int, int]:
    """(H, W) of a [batch, (rois,) H, W, C] shape; (1, 1) for a vector."""
    dims = list(shape[1:-1])
    if len(dims) >= 2 and dims[-2] is not None and dims[-1] is not None:
        return int(dims[-2]), int(dims[-1])
    return 1, 1


def estimate_flops(keras_model: keras.Model, config, mode: str) -> dict[str, float]:
    """Forward FLOPs per image, split into 'backbone' (conv1, res*, bn*) and 'heads' (rest).

    Args:
        keras_model: the MaskRCNN's Keras model (training mode needs a fixed image size).
        config: its Config.
        mode: "training" or "inference" (sets the ROI counts of the heads).
    """
    image_h, image_w = int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])
    if mode == "training":
        class_rois = mask_rois = int(config.TRAIN_ROIS_PER_IMAGE)
    else:
        class_rois = int(config.POST_NMS_ROIS_INFERENCE)
        mask_rois = int(config.DETECTION_MAX_INSTANCES)
    # Pyramid levels the shared RPN runs on: P2..P6 at strides 4..64.
    rpn_levels = [(-(-image_h // s), -(-image_w // s)) for s in config.BACKBONE_STRIDES]
    out = {"backbone": 0, "heads": 0}
    for layer in keras_model.layers:
        if isinstance(layer, keras.Model):  # the shared RPN, run once per pyramid level
            for inner in layer.layers:
                if _is_counted(inner):
                    out["heads"] += sum(_conv_macs(inner, h, w) for h, w in rpn_levels)
            continue
        inner = getattr(layer, "layer", None)
        if isinstance(inner, keras.layers.Layer) and _is_counted(inner):  # per-ROI heads
            h, w = _spatial(layer.output.shape)
            rois = mask_rois if layer.name.startswith("mrcnn_mask") else class_rois
            out["heads"] += rois * _conv_macs(inner, h, w)
            continue
        if _is_counted(layer):
            h, w = _spatial(layer.output.shape)
            part = "heads" if layer.name.startswith(("fpn_", "rpn_", "mrcnn_")) else "backbone"
            out[part] += _conv_macs(layer, h, w)
    return {k: 2.0 * v for k, v in out.items()}  # 1 multiply-add = 2 FLOPs


def step_flops(forward: dict[str, float], batch: int, layers: str) -> float:
    """Training-step FLOPs: forward once, backward ~2x forward of the layers it reaches."""
    total = forward["backbone"] + forward["heads"]
    backward = forward["heads"] if layers == "heads" else total
    return batch * (total + 2.0 * backward)


# --------------------------------------------------------------------------- timing
def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: traces the graph
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_backbone(backbone: str, batch: int, repeats: int, model_dir: str) -> dict:
    class BenchConfig(ShapesConfig):
        NAME = "bench"
        BACKBONE = backbone
        IMAGES_PER_GPU = batch

    class BenchInferenceConfig(BenchConfig):
        IMAGES_PER_GPU = 1

    config = BenchConfig()
    dataset = ShapesDataset()
    dataset.load_shapes(max(batch, 4), 128, 128, seed=0)
    dataset.prepare()
    inputs = DataGenerator(dataset, config, shuffle=False, seed=0, steps=1)[0][0]

    model = modellib.MaskRCNN("training", config, model_dir)
    forward = estimate_flops(model.keras_model, config, "training")
    # Same layers and image size in inference mode; only the heads' ROI counts differ (the
    # training graph has the static feature-map sizes the count needs).
    infer_forward = estimate_flops(model.keras_model, config, "inference")
    row = {"backbone": backbone, "batch": batch}
    for layers in ("heads", "all"):
        model.set_trainable(layers, verbose=0)
        model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
        row[layers] = median_seconds(lambda: model.keras_model.train_on_batch(inputs), repeats)
        row[f"{layers}_gflops"] = step_flops(forward, batch, layers) / 1e9
    keras.backend.clear_session()

    infer_config = BenchInferenceConfig()
    inference = modellib.MaskRCNN("inference", infer_config, model_dir)
    image = dataset.load_image(0)
    row["detect"] = median_seconds(lambda: inference.detect([image]), repeats)
    row["detect_gflops"] = (infer_forward["backbone"] + infer_forward["heads"]) / 1e9
    keras.backend.clear_session()
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed steps/calls (median)")
    p.add_argument("--backbone", choices=["resnet101", "resnet50", "both"], default=None)
    p.add_argument("--quick", action="store_true", help="smoke run: ResNet-50, batch 2")
    args = p.parse_args(argv)
    backbone = args.backbone or ("resnet50" if args.quick else "both")
    backbones = ["resnet101", "resnet50"] if backbone == "both" else [backbone]
    batch = 2 if args.quick else 8
    repeats = 2 if args.quick else args.repeats

    rows = []
    with tempfile.TemporaryDirectory() as model_dir:
        for name in backbones:
            rows.append(bench_backbone(name, batch, repeats, model_dir))

    print(f"\nMask R-CNN shapes config, 128 px, {repeats} repeats (median seconds); "
          "GFLOPs are analytic estimates (conv/deconv/dense multiply-adds x 2)")
    header = (f"{'backbone':<10} {'batch':>5} {'heads s/step':>13} {'all s/step':>11} "
              f"{'detect s':>9} {'GFLOP heads':>12} {'GFLOP all':>10} {'GFLOP det':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['backbone']:<10} {r['batch']:>5} {r['heads']:>13.3f} {r['all']:>11.3f} "
              f"{r['detect']:>9.3f} {r['heads_gflops']:>12.1f} {r['all_gflops']:>10.1f} "
              f"{r['detect_gflops']:>10.1f}")


if __name__ == "__main__":
    main()
