"""Benchmark of Mask R-CNN training steps and detect() on the shapes config, ours against
matterport's design in the same run.

For each backbone (ResNet-101 and ResNet-50 by default) and each case it builds matterport's
ShapesConfig model (batch 8, 128 px images, 4 classes) and measures:
  - build s: constructing the training and the inference Keras models (graph building);
  - trace s: the first heads step, all step and detect() call, which trace the graphs;
  - the median seconds per training step with layers="heads" and with layers="all"
    (`train_on_batch` on one fixed batch from the DataGenerator, after the tracing step;
    data loading is not included);
  - fit s / idle: the median seconds per all-layers step of Keras' `fit()` on the real
    DataGenerator (data loaded by worker threads while the step runs, as `train()` does),
    and the share of it not explained by the step on a ready batch (data stalls, fit's
    own overhead);
  - the median seconds per `detect()` call on one image (inference mode, batch 1, cycling
    over `--detect-images` images; includes molding and unmolding), and the mean number of
    detections per image (with random weights it says little: pass `--weights`);
  - peak RSS: the process' resident-set high-water mark during the case (reset before each
    case through /proc/self/clear_refs where Linux allows it, else the process' peak so far);
  - GFLOPs per step, estimated ANALYTICALLY from the layer shapes: 2 x multiply-adds of every
    Conv2D, Conv2DTranspose and Dense layer (backbone, FPN, the shared RPN on each of P2-P6,
    the heads on their ROI counts: TRAIN_ROIS_PER_IMAGE for the classifier and the positives
    or all of them for the mask head in training; POST_NMS_ROIS_INFERENCE for the classifier
    and the real detections or DETECTION_MAX_INSTANCES for the mask head in inference).
    BatchNorm, activations, ROIAlign, NMS and the losses are left out. A training step counts
    the forward pass once plus 2x the forward FLOPs of the layers the backward pass goes
    through (all layers for "all"; FPN, RPN and heads for "heads").

Cases: `--precision` (one or more of float32, mixed_bfloat16, mixed_float16, auto; "auto" is
resolved for this machine by mrcnn.modeling.precision) runs our graph; `--matterport` adds
our graph run the way matterport's runs (float32, mask head on all TRAIN_ROIS_PER_IMAGE ROIs
in training: MASK_ON_POSITIVE_ROIS=False; on all DETECTION_MAX_INSTANCES rows at inference:
MASK_ON_DETECTIONS=False), and every row then shows its speed-up against it (matterport
seconds / ours). The machine's CPU model and bf16 flags are printed with the table: bf16
speed depends on them. Numbers are noisy on a shared machine; compare within one run only.

Usage:
    python bench/train_step.py [--repeats 5] [--backbone resnet101|resnet50|both]
        [--precision float32 auto ...] [--matterport] [--weights mask_rcnn_shapes.h5]
        [--image-size 128] [--batch 8] [--json results.json] [--quick]
        [--config samples.shapes.train:DemoConfig]

`--quick` is a smoke run: ResNet-50, tiny heads (TinyConfig's sizes), batch 2, 2 repeats
(unless --backbone, --batch or --repeats say otherwise); it checks the script, not speed.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from mrcnn import model as modellib  # noqa: E402
from mrcnn.data.generator import DataGenerator  # noqa: E402
from mrcnn.engine.host_allocator import peak_rss_mib  # noqa: E402
from mrcnn.engine.train_loop import default_workers  # noqa: E402
from mrcnn.fileio import atomic_write  # noqa: E402
from mrcnn.modeling import precision  # noqa: E402
from samples.shapes.shapes import ShapesConfig, ShapesDataset  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
MATTERPORT = "matterport"
# TinyConfig's head sizes (tests/tiny_config.py): builds and steps in seconds.
TINY = {"TOP_DOWN_PYRAMID_SIZE": 32, "FPN_CLASSIF_FC_LAYERS_SIZE": 64,
        "TRAIN_ROIS_PER_IMAGE": 16, "POST_NMS_ROIS_TRAINING": 64, "POST_NMS_ROIS_INFERENCE": 32,
        "RPN_TRAIN_ANCHORS_PER_IMAGE": 32, "MAX_GT_INSTANCES": 5, "DETECTION_MAX_INSTANCES": 5,
        "MINI_MASK_SHAPE": (14, 14)}


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


def estimate_flops(keras_model: keras.Model, config, mode: str,
                   mask_rois: float | None = None) -> dict[str, float]:
    """Forward FLOPs per image, split into 'backbone' (conv1, res*, bn*) and 'heads' (rest).

    Args:
        keras_model: the MaskRCNN's training Keras model (it has a fixed image size).
        config: its Config.
        mode: "training" or "inference" (sets the ROI counts of the heads).
        mask_rois: ROIs of the mask head per image; default the graph's (training: the
            positives with MASK_ON_POSITIVE_ROIS, else TRAIN_ROIS_PER_IMAGE; inference:
            DETECTION_MAX_INSTANCES).
    """
    image_h, image_w = int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])
    if mode == "training":
        class_rois = int(config.TRAIN_ROIS_PER_IMAGE)
        positives = int(config.TRAIN_ROIS_PER_IMAGE * config.ROI_POSITIVE_RATIO)
        default_mask = positives if config.MASK_ON_POSITIVE_ROIS else class_rois
    else:
        class_rois = int(config.POST_NMS_ROIS_INFERENCE)
        default_mask = int(config.DETECTION_MAX_INSTANCES)
    mask_rois = default_mask if mask_rois is None else mask_rois
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


# --------------------------------------------------------------------------- memory, machine
def reset_peak_rss() -> bool:
    """Reset the process' RSS high-water mark (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_model() -> str:
    try:
        with open(precision.CPUINFO_PATH) as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- cases
def config_class(spec: str | None) -> type:
    """The Config class named by `--config` ("module:Class"); ShapesConfig by default."""
    if not spec:
        return ShapesConfig
    module_name, _, class_name = spec.partition(":")
    if not class_name:
        raise ValueError(f"--config must look like module:Class, got {spec!r}")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"--config {spec!r}: {module_name} has no class {class_name!r}")
    return cls


def make_configs(case: str, backbone: str, batch: int, image_size: int, tiny: bool,
                 base: type = ShapesConfig):
    """(training config, inference config) of `case`: a precision or MATTERPORT."""
    matterport = case == MATTERPORT
    attrs = {"NAME": "bench", "BACKBONE": backbone, "IMAGES_PER_GPU": batch,
             "IMAGE_MIN_DIM": image_size, "IMAGE_MAX_DIM": image_size,
             "MIXED_PRECISION": None if case in ("float32", MATTERPORT) else case,
             "MASK_ON_POSITIVE_ROIS": not matterport, "MASK_ON_DETECTIONS": not matterport,
             **(TINY if tiny else {})}
    train_cls = type("BenchConfig", (base,), attrs)
    infer_cls = type("BenchInferenceConfig", (train_cls,), {"IMAGES_PER_GPU": 1})
    return train_cls(), infer_cls()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class _BatchClock(keras.callbacks.Callback):
    """Wall time between the ends of consecutive training batches."""

    def __init__(self):
        super().__init__()
        self.ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def fit_step(model, config, dataset, repeats: int, step_s: float) -> tuple[float, float]:
    """(median seconds per step of `fit()` on the real DataGenerator, its idle share).

    The all-layers model trains for `repeats` + 2 steps through Keras' fit with the data
    loaded by `default_workers()` threads, as `MaskRCNN.train` does; the first interval
    (iterator start-up) is dropped. Idle = (fit step - train_on_batch step on a ready
    batch) / fit step: the share of the step spent waiting for data or in fit's overhead.
    """
    generator = DataGenerator(dataset, config, shuffle=True, seed=0, steps=repeats + 2,
                              workers=default_workers())
    clock = _BatchClock()
    model.keras_model.fit(generator, epochs=1, steps_per_epoch=repeats + 2, verbose=0,
                          callbacks=[clock])
    intervals = [b - a for a, b in zip(clock.ends[1:], clock.ends[2:], strict=False)]
    fit_s = statistics.median(intervals)
    return fit_s, max(0.0, (fit_s - step_s) / fit_s)


def bench_case(case: str, backbone: str, args, dataset, model_dir: str) -> dict:
    """Build, trace and time one case; returns its table row."""
    config, infer_config = make_configs(case, backbone, args.batch, args.image_size, args.tiny,
                                        config_class(args.config))
    inputs = DataGenerator(dataset, config, shuffle=False, seed=0, steps=1)[0][0]
    images = [dataset.load_image(i) for i in range(args.detect_images)]
    gc.collect()
    exact_peak = reset_peak_rss()
    policy = precision.resolve_policy(config.MIXED_PRECISION)
    row = {"backbone": backbone, "case": case, "policy": policy or "float32",
           "batch": config.BATCH_SIZE, "image_size": args.image_size}

    start = time.perf_counter()
    model = modellib.MaskRCNN("training", config, model_dir)
    build = time.perf_counter() - start
    if args.weights:
        model.load_weights(args.weights, by_name=True)
    forward = estimate_flops(model.keras_model, config, "training")
    trace = 0.0
    for layers in ("heads", "all"):
        model.set_trainable(layers, verbose=0)
        model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
        step = lambda: model.keras_model.train_on_batch(inputs)  # noqa: E731
        trace += timed(step)
        row[layers] = statistics.median(timed(step) for _ in range(args.repeats))
        row[f"{layers}_gflops"] = step_flops(forward, config.BATCH_SIZE, layers) / 1e9
    row["fit"], row["idle"] = fit_step(model, config, dataset, args.repeats, row["all"])
    # Inference FLOPs are linear in the mask head's ROIs, known after detect().
    no_mask = estimate_flops(model.keras_model, infer_config, "inference", mask_rois=0)
    one_mask = estimate_flops(model.keras_model, infer_config, "inference", mask_rois=1)
    model = step = None  # free the training graph before the inference one is built
    keras.backend.clear_session()
    gc.collect()

    start = time.perf_counter()
    inference = modellib.MaskRCNN("inference", infer_config, model_dir)
    build += time.perf_counter() - start
    if args.weights:
        inference.load_weights(args.weights, by_name=True)
    trace += timed(lambda: inference.detect(images[:1]))
    times, counts = [], []
    for i in range(args.repeats):
        image = images[i % len(images)]
        start = time.perf_counter()
        result = inference.detect([image])[0]
        times.append(time.perf_counter() - start)
        counts.append(len(result["class_ids"]))
    row["detect"] = statistics.median(times)
    row["detections"] = statistics.mean(counts)
    mask_rois = (row["detections"] if infer_config.MASK_ON_DETECTIONS
                 else infer_config.DETECTION_MAX_INSTANCES)
    base, per_roi = sum(no_mask.values()), sum(one_mask.values()) - sum(no_mask.values())
    row["detect_gflops"] = (base + mask_rois * per_roi) / 1e9
    row.update(build_s=build, trace_s=trace, peak_rss_mb=peak_rss_mib(),
               peak_rss_exact=exact_peak)
    inference = None
    keras.backend.clear_session()
    gc.collect()
    return row


def add_ratios(rows: list[dict]) -> None:
    """Add `{part}_x` = matterport seconds / the row's seconds, per backbone."""
    base = {r["backbone"]: r for r in rows if r["case"] == MATTERPORT}
    for r in rows:
        ref = base.get(r["backbone"])
        for part in ("heads", "all", "detect"):
            r[f"{part}_x"] = ref[part] / r[part] if ref and r[part] > 0 else None


def print_table(rows: list[dict], args, flags: dict) -> None:
    flag_text = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in flags.items())
    size = "tiny heads" if args.tiny else "shapes config"
    print(f"\nMask R-CNN {size}, {args.image_size} px, median of {args.repeats} "
          f"(seconds; x = matterport's seconds / ours, same run)")
    print(f"CPU: {cpu_model()}; {flag_text}")

    def ratio(v):
        return f"{v:.2f}x" if v is not None else "-"

    header = (f"{'backbone':<10} {'case':<15} {'policy':<15} {'heads s':>8} {'x':>6} "
              f"{'all s':>7} {'x':>6} {'fit s':>6} {'idle':>5} {'detect s':>9} {'x':>6} "
              f"{'dets':>5} {'build s':>8} "
              f"{'trace s':>8} {'peak MiB':>9} {'GF heads':>9} {'GF all':>8} {'GF det':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['backbone']:<10} {r['case']:<15} {r['policy']:<15} {r['heads']:>8.3f} "
              f"{ratio(r['heads_x']):>6} {r['all']:>7.3f} {ratio(r['all_x']):>6} "
              f"{r['fit']:>6.3f} {r['idle']:>5.0%} "
              f"{r['detect']:>9.3f} {ratio(r['detect_x']):>6} {r['detections']:>5.1f} "
              f"{r['build_s']:>8.1f} {r['trace_s']:>8.1f} {r['peak_rss_mb']:>9.0f} "
              f"{r['heads_gflops']:>9.1f} {r['all_gflops']:>8.1f} {r['detect_gflops']:>7.1f}")
    if not all(r["peak_rss_exact"] for r in rows):
        print("(peak MiB: the process' peak so far; /proc/self/clear_refs was not writable)")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=None, help="timed steps/calls (median); 5")
    p.add_argument("--backbone", choices=["resnet101", "resnet50", "both"], default=None)
    p.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"],
                   help="our graph under these policies (default float32)")
    p.add_argument("--matterport", action="store_true",
                   help="add matterport's way (float32, masks on all ROIs) and ratios to it")
    p.add_argument("--weights", default=None, help="a trained checkpoint (.h5) for both modes")
    p.add_argument("--batch", type=int, default=None, help="training batch (default 8)")
    p.add_argument("--image-size", type=int, default=128, help="image side, a multiple of 64")
    p.add_argument("--detect-images", type=int, default=4, help="images detect() cycles over")
    p.add_argument("--json", default=None, help="also write the rows and machine to this file")
    p.add_argument("--tiny", action="store_true", help="TinyConfig's head sizes")
    p.add_argument("--config", default=None,
                   help="module:Class of the Config to start from (default: ShapesConfig), "
                        "e.g. samples.shapes.train:DemoConfig for the demo's checkpoint")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: ResNet-50, tiny heads, batch 2, 2 repeats")
    args = p.parse_args(argv)
    args.tiny = args.tiny or args.quick
    args.backbone = args.backbone or ("resnet50" if args.quick else "both")
    if args.batch is None:
        args.batch = 2 if args.quick else 8
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    for name in ("repeats", "batch", "detect_images", "image_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.image_size % 64:
        p.error(f"--image-size must be a multiple of 64, got {args.image_size}")
    if args.weights and not os.path.isfile(args.weights):
        p.error(f"--weights file not found: {args.weights}")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    backbones = ["resnet101", "resnet50"] if args.backbone == "both" else [args.backbone]
    cases = list(dict.fromkeys(args.precision)) + ([MATTERPORT] if args.matterport else [])
    flags = precision.reported_cpu_flags()
    dataset = ShapesDataset()
    dataset.load_shapes(max(args.batch, args.detect_images), args.image_size, args.image_size,
                        seed=0)
    dataset.prepare()

    rows = []
    with tempfile.TemporaryDirectory() as model_dir:
        for backbone in backbones:
            for case in cases:
                rows.append(bench_case(case, backbone, args, dataset, model_dir))
    add_ratios(rows)
    print_table(rows, args, flags)
    if args.json:
        report = {"cpu_model": cpu_model(), "cpu_flags": flags, "settings": vars(args),
                  "rows": rows}
        with atomic_write(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
