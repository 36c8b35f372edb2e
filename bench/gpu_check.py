"""GPU readiness check: training and inference images/s at 1024 px on the visible GPUs.

For each backbone (ResNet-50, ResNet-101), precision (float32, mixed_float16 with dynamic
loss scaling) and XLA setting (jit_compile off and on, both measured; nothing is left to
Keras' "auto"), it measures:
  - train, 1 GPU: `train_on_batch` of the TrainingModel (the `fit` path of DISTRIBUTION=None)
    on one fixed batch of IMAGES_PER_GPU images, layers="all";
  - train, N GPUs: the `mrcnn.distribute` step (MirroredStrategy over every visible GPU,
    gradients summed and clipped on their global norm) on a fixed global batch of
    IMAGES_PER_GPU * N images (only with 2 or more GPUs);
  - inference, 1 GPU: `MaskRCNN.detect` on IMAGES_PER_GPU images (molding and unmolding
    included).
The first step of each case traces and compiles the graph and is not timed. The data are
shapes images (samples/shapes) scaled to 1024 px; the weights are random.

It prints a table of images/s and writes the rows as JSON (--json). Without a GPU it says so
and exits with status 0 after writing {"gpus": 0, "skipped": ...}; `--cpu-smoke` runs the
whole procedure on the CPU at 128 px with ResNet-50, float32, one step, the "all GPUs" case
on a one-replica MirroredStrategy over the CPU (a test runs it).

Usage:
    python bench/gpu_check.py [--steps 10] [--images-per-gpu 2] [--json gpu_check.json]
                              [--backbones resnet50,resnet101] [--precisions float32,mixed_float16]
                              [--jit off,on] [--cpu-smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mrcnn import model as modellib  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from mrcnn.data.generator import DataGenerator  # noqa: E402
from mrcnn.distribute.loop import make_step_functions  # noqa: E402
from mrcnn.engine.trainer import make_optimizer, set_trainable  # noqa: E402
from samples.shapes.shapes import ShapesDataset  # noqa: E402


def make_config(backbone: str, precision: str, size: int, images_per_gpu: int,
                gpus: int) -> Config:
    """A 4-class config at `size` px (matterport's COCO-like sizes at 1024)."""
    class CheckConfig(Config):
        NAME = "gpu_check"
        NUM_CLASSES = 4
        BACKBONE = backbone
        IMAGES_PER_GPU = images_per_gpu
        GPU_COUNT = gpus
        IMAGE_MIN_DIM = size
        IMAGE_MAX_DIM = size
        MIXED_PRECISION = None if precision == "float32" else precision
        RANDOM_SEED = 0
    if size < 512:  # the CPU smoke run: anchors for small images, slim heads
        CheckConfig.RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        CheckConfig.TOP_DOWN_PYRAMID_SIZE = 32
        CheckConfig.FPN_CLASSIF_FC_LAYERS_SIZE = 64
        CheckConfig.POST_NMS_ROIS_TRAINING = 64
        CheckConfig.POST_NMS_ROIS_INFERENCE = 32
        CheckConfig.TRAIN_ROIS_PER_IMAGE = 16
    return CheckConfig()


def shapes(size: int, count: int) -> ShapesDataset:
    ds = ShapesDataset()
    ds.load_shapes(count, size, size, seed=0)
    ds.prepare()
    return ds


def _rate(images: int, seconds: list[float]) -> float:
    return images / float(np.median(seconds))


def time_calls(fn, steps: int) -> list[float]:
    """Seconds of `steps` calls of `fn` after one untimed warm-up (tracing) call."""
    fn()
    out = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def train_single(config: Config, data: ShapesDataset, jit: bool, steps: int, logs: str) -> float:
    model = modellib.MaskRCNN("training", config, logs)
    km = model.keras_model
    set_trainable(km, "all", verbose=0)
    km.compile(optimizer=make_optimizer(1e-3, 0.9, config.GRADIENT_CLIP_NORM), jit_compile=jit)
    batch = DataGenerator(data, config, seed=0, steps=1)[0][0]

    def step():
        float(km.train_on_batch(batch, return_dict=True)["loss"])  # waits for the GPU
    return _rate(config.BATCH_SIZE, time_calls(step, steps))


def train_mirrored(config: Config, data: ShapesDataset, jit: bool, steps: int,
                   logs: str) -> float:
    strategy = tf.distribute.MirroredStrategy()
    model = modellib.MaskRCNN("training", config, logs, strategy=strategy)
    km = model.keras_model
    with strategy.scope():
        set_trainable(km, "all", verbose=0)
        km.compile(optimizer=make_optimizer(1e-3, 0.9, None), jit_compile=False)
        train_step, _ = make_step_functions(km, strategy, config.GRADIENT_CLIP_NORM,
                                            jit_compile=jit)
    batch = DataGenerator(data, config, seed=0, steps=1)[0][0]
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat())
    iterator = iter(dataset)

    def step():
        float(train_step(next(iterator))["loss"])
    return _rate(config.BATCH_SIZE, time_calls(step, steps))


def inference(config: Config, data: ShapesDataset, jit: bool, steps: int, logs: str) -> float:
    model = modellib.MaskRCNN("inference", config, logs)
    model.keras_model.compile(jit_compile=jit)  # predict_on_batch follows this setting
    images = [data.load_image(i) for i in range(config.IMAGES_PER_GPU)]
    return _rate(len(images), time_calls(lambda: model.detect(images), steps))


def run_cases(args: argparse.Namespace, gpus: int) -> list[dict]:
    size = 128 if args.cpu_smoke else 1024
    replicas = max(1, gpus)  # the smoke run's "all GPUs" case: one replica on the CPU
    rows = []
    with tempfile.TemporaryDirectory() as logs:
        data = shapes(size, 2 * args.images_per_gpu * replicas)
        for backbone in args.backbones:
            for precision in args.precisions:
                for jit in args.jit:
                    row = {"backbone": backbone, "precision": precision, "jit_compile": jit,
                           "image_size": size, "images_per_gpu": args.images_per_gpu}
                    one = make_config(backbone, precision, size, args.images_per_gpu, 1)
                    for key, fn, config in (
                            ("train_1gpu", train_single, one),
                            ("infer_1gpu", inference, one),
                            ("train_all_gpus", train_mirrored,
                             make_config(backbone, precision, size, args.images_per_gpu, replicas)
                             if gpus > 1 or args.cpu_smoke else None)):
                        if config is None:
                            continue
                        try:
                            row[key] = round(fn(config, data, jit, args.steps, logs), 3)
                        except Exception as e:  # a failing case is a result, not a crash
                            row[key] = None
                            row.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"[:300]
                        keras.backend.clear_session()  # free the case's graphs and memory
                    rows.append(row)
                    print(format_row(row), flush=True)
    return rows


HEADER = (f"{'backbone':<10} {'precision':<14} {'jit':<4} {'train 1 GPU':>12} "
          f"{'train all':>10} {'infer 1 GPU':>12}   (images/s)")


def format_row(row: dict) -> str:
    def cell(key, width):
        value = row.get(key)
        return f"{'-' if value is None else value:>{width}}"
    jit = "on" if row["jit_compile"] else "off"
    return (f"{row['backbone']:<10} {row['precision']:<14} {jit:<4}"
            f" {cell('train_1gpu', 12)} {cell('train_all_gpus', 10)} {cell('infer_1gpu', 12)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10, help="timed steps per case (default 10)")
    p.add_argument("--images-per-gpu", type=int, default=2)
    p.add_argument("--backbones", default="resnet50,resnet101")
    p.add_argument("--precisions", default="float32,mixed_float16")
    p.add_argument("--jit", default="off,on", help="XLA settings to measure: off,on")
    p.add_argument("--json", default="gpu_check.json", help="where to write the rows")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="run on the CPU at 128 px, ResNet-50, float32, jit off, 1 step")
    args = p.parse_args(argv)
    args.backbones = args.backbones.split(",")
    args.precisions = args.precisions.split(",")
    args.jit = [{"off": False, "on": True}[v] for v in args.jit.split(",")]
    if args.cpu_smoke:
        args.backbones, args.precisions, args.jit, args.steps = ["resnet50"], ["float32"], \
            [False], 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpus = len(tf.config.list_physical_devices("GPU"))
    report = {"gpus": gpus, "tensorflow": tf.__version__,
              "gpu_names": [tf.config.experimental.get_device_details(d).get("device_name")
                            for d in tf.config.list_physical_devices("GPU")]}
    if not gpus and not args.cpu_smoke:
        report["skipped"] = "no GPU visible to TensorFlow"
        print("gpu_check: no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') "
              "is empty); nothing measured. Install the GPU build (pip install "
              "'tensorflow[and-cuda]') or run with --cpu-smoke to check the script itself.")
    else:
        print(HEADER, flush=True)
        report["rows"] = run_cases(args, gpus)
        report["cpu_smoke"] = bool(args.cpu_smoke)
    from mrcnn.fileio import atomic_write

    with atomic_write(args.json) as tmp, open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
