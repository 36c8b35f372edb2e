"""Which CPU settings pay for Mask R-CNN: XLA per network part, TensorFlow's thread pools and
oneDNN, measured on matterport's ShapesConfig (128 px, batch 8, ResNet-101 by default).

Every time is the median of `--repeats` calls after one tracing call (the first call, which
traces and, under XLA, compiles, is reported apart as "first s"). Three sections:

  xla      each part as a standalone `tf.function` with `jit_compile=False` and with
           `jit_compile=True`, same weights, same inputs (ratio = XLA s / no-XLA s):
             backbone_fwd        backbone + FPN forward ([batch, H, W, 3] -> [P2..P6]);
             backbone_fwd_bwd    plus the gradient of sum(P2..P6) w.r.t. every weight (all
                                 trainable; BatchNorms frozen as TRAIN_BN=False has them);
             mask_fwd_bwd        the mask head after its ROIAlign, forward + gradient of the
                                 masks' sum, on int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO)
                                 pooled ROIs per image (the training graph's positives),
                                 [batch, rois, MASK_POOL_SIZE, MASK_POOL_SIZE, channels];
             classifier_fwd_bwd  the box head after its ROIAlign on TRAIN_ROIS_PER_IMAGE
                                 pooled ROIs of POOL_SIZE (gradient of its outputs' sum);
             train_step_heads    the whole TrainingModel step (train_on_batch, layers="heads")
                                 compiled by Keras with jit_compile False / True.
           Where XLA cannot compile a part, its row has the error type (and the ops XLA
           refused) instead of seconds.
  threads  the heads training step (`train_on_batch` on a DataGenerator batch) and one
           detect() call (batch 1) under `tf.config.threading` intra-op / inter-op pool
           sizes: TF's default (0, 0), then intra in {cores, cores / 2} x inter in {1, 2}.
  onednn   the same two measures with TF_ENABLE_ONEDNN_OPTS=0 and =1.

Pool sizes and TF_ENABLE_ONEDNN_OPTS only act before TensorFlow initializes, so each threads
/ onednn setting runs in a fresh subprocess of this script (`--child INTRA,INTER`, oneDNN by
environment) printing one line `CPU_SETTINGS_CHILD {json}`; their ratio is to the default
child (TF's pools, TF_ENABLE_ONEDNN_OPTS as inherited). The xla section runs in this process.
The table names the CPU and its flags; numbers are noisy on a shared machine.

Usage:
    python bench/cpu_settings.py [--backbone resnet101|resnet50] [--repeats 5] [--batch 8]
        [--image-size 128] [--sections xla threads onednn] [--threads 0,0 2,1 ...]
        [--onednn 0 1] [--json results.json] [--quick]

`--quick` is a smoke run: ResNet-50, tiny heads (TinyConfig's sizes), batch 2, 2 repeats
(unless --backbone, --batch or --repeats say otherwise); it checks the script, not speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.train_step import cpu_model, make_configs, timed  # noqa: E402
from mrcnn import model as modellib  # noqa: E402
from mrcnn.data.generator import DataGenerator  # noqa: E402
from mrcnn.engine.train_loop import release_compiled_state  # noqa: E402
from mrcnn.engine.trainer import make_optimizer  # noqa: E402
from mrcnn.fileio import atomic_write  # noqa: E402
from mrcnn.modeling import builder, precision  # noqa: E402
from samples.shapes.shapes import ShapesDataset  # noqa: E402

SECTIONS = ("xla", "threads", "onednn")
CHILD_PARTS = ("heads_step", "detect")
XLA_OFF, XLA_ON = "jit_compile=False", "jit_compile=True"
DEFAULT = "default"
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
CHILD_PREFIX = "CPU_SETTINGS_CHILD "


# --------------------------------------------------------------------------- settings
def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_settings(cores: int) -> list[tuple[int, int]]:
    """(intra, inter) pool sizes to try: TF's default (0, 0) first, then intra in
    {cores, cores // 2 (at least 1)} x inter in {1, 2}, without repeats.

    Raises:
        ValueError: `cores` is not a positive int.
    """
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise ValueError(f"cores must be a positive int, got {cores!r}")
    intra = dict.fromkeys((cores, max(1, cores // 2)))
    return list(dict.fromkeys([(0, 0)] + [(a, b) for a in intra for b in (1, 2)]))


def parse_pair(text: str) -> tuple[int, int]:
    """"INTRA,INTER" -> (intra, inter), both ints >= 0 (0 = TensorFlow's default)."""
    parts = text.split(",")
    try:
        intra, inter = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected INTRA,INTER (two ints), got {text!r}") from None
    if intra < 0 or inter < 0:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 0, got {text!r}")
    return intra, inter


def thread_label(intra: int, inter: int) -> str:
    return DEFAULT if (intra, inter) == (0, 0) else f"intra={intra} inter={inter}"


def process_settings(sections, threads, onednn) -> list[dict]:
    """The subprocess runs: the default one (the reference) first, then the pool sizes of
    `threads` (when "threads" is in `sections`) and the oneDNN values of `onednn` (when
    "onednn" is). Each: {section, setting, intra, inter, onednn (None = inherited)}."""
    runs = [{"section": "threads", "setting": DEFAULT, "intra": 0, "inter": 0, "onednn": None}]
    if "threads" in sections:
        runs += [{"section": "threads", "setting": thread_label(a, b), "intra": a, "inter": b,
                  "onednn": None} for a, b in dict.fromkeys(threads) if (a, b) != (0, 0)]
    if "onednn" in sections:
        runs += [{"section": "onednn", "setting": f"{ONEDNN_ENV}={v}", "intra": 0, "inter": 0,
                  "onednn": v} for v in dict.fromkeys(onednn)]
    return runs


# --------------------------------------------------------------------------- rows, ratios
def make_row(section: str, part: str, setting: str, seconds: float | None = None,
             first: float | None = None, error: str | None = None) -> dict:
    return {"section": section, "part": part, "setting": setting, "seconds": seconds,
            "first_s": first, "error": error, "ratio": None}


def ratio(seconds: float | None, reference: float | None) -> float | None:
    """seconds / reference; None when either is missing or not a positive finite number."""
    ok = [v is not None and math.isfinite(v) and v > 0 for v in (seconds, reference)]
    return seconds / reference if all(ok) else None


def add_ratios(rows: list[dict]) -> None:
    """Set each row's `ratio`: to the same part's jit_compile=False row in the xla section,
    to the same part's default subprocess row in the threads and onednn sections."""
    index = {(r["section"] == "xla", r["part"], r["setting"]): r for r in rows}
    for r in rows:
        xla = r["section"] == "xla"
        ref = index.get((xla, r["part"], XLA_OFF if xla else DEFAULT))
        r["ratio"] = ratio(r["seconds"], ref["seconds"] if ref else None)


def parse_child_output(stdout: str) -> dict:
    """The result of a `--child` run from its stdout: the JSON after the last line starting
    with CHILD_PREFIX.

    Raises:
        ValueError: no such line, bad JSON, or a measure of CHILD_PARTS missing or not a
            positive finite number of seconds.
    """
    lines = [ln for ln in stdout.splitlines() if ln.startswith(CHILD_PREFIX)]
    if not lines:
        raise ValueError(f"no {CHILD_PREFIX.strip()!r} line in the child's output")
    try:
        result = json.loads(lines[-1][len(CHILD_PREFIX):])
    except json.JSONDecodeError as e:
        raise ValueError(f"the child's result is not JSON: {lines[-1]!r}") from e
    if not isinstance(result, dict):
        raise ValueError(f"the child's result must be a JSON object, got {result!r}")
    for part in CHILD_PARTS:
        value = result.get(part)
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or not math.isfinite(value) or value <= 0):
            raise ValueError(f"the child's {part!r} must be positive seconds, got {value!r}")
    return result


# --------------------------------------------------------------------------- measuring
def median_time(fn, repeats: int) -> tuple[float, float]:
    """(median seconds of `repeats` calls of `fn`, seconds of the first, tracing call)."""
    first = timed(fn)
    return statistics.median(timed(fn) for _ in range(repeats)), first


def error_detail(error: Exception) -> str:
    """The ops XLA could not compile ("unsupported: CropAndResize, ...") where the message
    lists them, else the message's first line (at most 200 characters)."""
    text = str(error).strip()
    ops = list(dict.fromkeys(re.findall(r"(\w+) \(No registered", text)))
    if ops:
        return "unsupported by XLA: " + ", ".join(ops)
    return text.splitlines()[0][:200] if text else ""


def _forward(model: keras.Model):
    return lambda x: model(x, training=True)


def _forward_backward(model: keras.Model):
    def step(x):
        with tf.GradientTape() as tape:
            outputs = tf.nest.flatten(model(x, training=True))
            total = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32)) for o in outputs])
        return tape.gradient(total, model.trainable_variables)
    return step


def measured_row(part: str, setting: str, fn, repeats: int) -> dict:
    """An xla-section row of `fn` timed by median_time, or of the error it raised (XLA
    refuses some ops: the table records which, the run goes on)."""
    try:
        seconds, first = median_time(fn, repeats)
        row = make_row("xla", part, setting, seconds, first)
    except Exception as e:  # noqa: BLE001 - any refusal is a result here
        row = make_row("xla", part, setting, error=type(e).__name__)
        row["detail"] = error_detail(e)
    print(_row_text(row), flush=True)
    return row


def xla_pair(part: str, fn, x, repeats: int) -> list[dict]:
    """Rows of `fn(x)` compiled by `tf.function` without and with XLA."""
    return [measured_row(part, setting, lambda c=tf.function(fn, jit_compile=jit): c(x), repeats)
            for setting, jit in ((XLA_OFF, False), (XLA_ON, True))]


def head_model(config, kind: str, num_rois: int) -> keras.Model:
    """The mask ("mask") or box ("classifier") head from the builder, cut after its ROIAlign:
    input [batch, num_rois, pool, pool, TOP_DOWN_PYRAMID_SIZE] pooled features."""
    depth = config.TOP_DOWN_PYRAMID_SIZE
    side = int(config.IMAGE_SHAPE[0])
    maps = [keras.Input(shape=(side // s, side // s, depth)) for s in config.BACKBONE_STRIDES[:4]]
    rois, meta = keras.Input(shape=(num_rois, 4)), builder.image_meta_input(config)
    outputs = (builder.mask_head if kind == "mask" else builder.classifier)(rois, maps, meta,
                                                                            config)
    full = keras.Model([rois, meta] + maps, outputs)
    pooled = full.get_layer(f"roi_align_{kind}").output
    return keras.Model(pooled, outputs, name=f"{kind}_head")


def train_step_rows(config, inputs, repeats: int, model_dir: str) -> list[dict]:
    """The heads training step of a TrainingModel compiled with jit_compile False / True."""
    model = modellib.MaskRCNN("training", config, model_dir)
    model.set_trainable("heads", verbose=0)
    keras_model = model.keras_model
    rows = []
    for setting, jit in ((XLA_OFF, False), (XLA_ON, True)):
        release_compiled_state(keras_model)
        optimizer = make_optimizer(config.LEARNING_RATE, config.LEARNING_MOMENTUM,
                                   config.GRADIENT_CLIP_NORM)
        keras_model.compile(optimizer=optimizer, jit_compile=jit)
        if bool(keras_model.jit_compile) != jit:  # Keras may turn XLA off by itself
            rows.append(make_row("xla", "train_step_heads", setting,
                                 error="KerasRefusedJitCompile"))
            print(_row_text(rows[-1]), flush=True)
            continue
        rows.append(measured_row("train_step_heads", setting,
                                 lambda: keras_model.train_on_batch(inputs), repeats))
    return rows


def xla_rows(args, dataset, model_dir: str) -> list[dict]:
    """The xla section: every part (see the module docstring) without and with XLA."""
    config, _ = make_configs("float32", args.backbone, args.batch, args.image_size, args.tiny)
    rng = np.random.default_rng(0)
    batch = config.BATCH_SIZE
    rows = []
    image = keras.Input(shape=tuple(int(v) for v in config.IMAGE_SHAPE))
    net = keras.Model(image, builder.fpn(builder.backbone(image, config), config))
    x = rng.normal(size=(batch, *net.input_shape[1:])).astype("float32")
    rows += xla_pair("backbone_fwd", _forward(net), x, args.repeats)
    rows += xla_pair("backbone_fwd_bwd", _forward_backward(net), x, args.repeats)
    positives = int(config.TRAIN_ROIS_PER_IMAGE * config.ROI_POSITIVE_RATIO)
    for part, kind, rois in (("mask_fwd_bwd", "mask", positives),
                             ("classifier_fwd_bwd", "classifier", config.TRAIN_ROIS_PER_IMAGE)):
        head = head_model(config, kind, rois)
        x = rng.normal(size=(batch, *head.input_shape[1:])).astype("float32")
        rows += xla_pair(part, _forward_backward(head), x, args.repeats)
    net = head = None
    keras.backend.clear_session()
    inputs = DataGenerator(dataset, config, shuffle=False, seed=0, steps=1)[0][0]
    rows += train_step_rows(config, inputs, args.repeats, model_dir)
    keras.backend.clear_session()
    return rows


def shapes_dataset(args) -> ShapesDataset:
    dataset = ShapesDataset()
    dataset.load_shapes(args.batch, args.image_size, args.image_size, seed=0)
    dataset.prepare()
    return dataset


def run_child(args) -> dict:
    """`--child` mode: set the pool sizes, then time a heads step and detect(); print the
    result as one CHILD_PREFIX line (parse_child_output reads it)."""
    intra, inter = args.child
    # Before any op runs: TF refuses (RuntimeError) once its context exists.
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    config, infer_config = make_configs("float32", args.backbone, args.batch, args.image_size,
                                        args.tiny)
    dataset = shapes_dataset(args)
    inputs = DataGenerator(dataset, config, shuffle=False, seed=0, steps=1)[0][0]
    with tempfile.TemporaryDirectory() as model_dir:
        model = modellib.MaskRCNN("training", config, model_dir)
        model.set_trainable("heads", verbose=0)
        model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
        heads, heads_first = median_time(lambda: model.keras_model.train_on_batch(inputs),
                                         args.repeats)
        model = None
        keras.backend.clear_session()
        inference = modellib.MaskRCNN("inference", infer_config, model_dir)
        image = dataset.load_image(0)
        detect, detect_first = median_time(lambda: inference.detect([image]), args.repeats)
    result = {"heads_step": heads, "detect": detect, "heads_step_first_s": heads_first,
              "detect_first_s": detect_first,
              "intra": tf.config.threading.get_intra_op_parallelism_threads(),
              "inter": tf.config.threading.get_inter_op_parallelism_threads(),
              "onednn": os.environ.get(ONEDNN_ENV, "unset")}
    print(CHILD_PREFIX + json.dumps(result), flush=True)
    return result


def child_command(run: dict, args) -> list[str]:
    """The command line of the subprocess for one setting of `process_settings`."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{run['intra']},{run['inter']}",
           "--backbone", args.backbone, "--batch", str(args.batch),
           "--image-size", str(args.image_size), "--repeats", str(args.repeats)]
    return cmd + (["--tiny"] if args.tiny else [])


def process_rows(args) -> list[dict]:
    """The threads and onednn sections, one subprocess per setting."""
    rows = []
    for run in process_settings(args.sections, args.threads, args.onednn):
        env = dict(os.environ)
        if run["onednn"] is not None:
            env[ONEDNN_ENV] = run["onednn"]
        proc = subprocess.run(child_command(run, args), env=env, capture_output=True,
                              text=True, check=False)
        try:
            result, detail = parse_child_output(proc.stdout), None
        except ValueError as e:
            result = None
            detail = f"{e}; stderr: " + " | ".join(proc.stderr.strip().splitlines()[-3:])
        for part in CHILD_PARTS:
            timing = (result[part], result[f"{part}_first_s"]) if result else ()
            row = make_row(run["section"], part, run["setting"], *timing,
                           error=None if result else f"ChildExit{proc.returncode}")
            row.update({k: result[k] for k in ("intra", "inter", "onednn")} if result
                       else {"detail": detail})
            rows.append(row)
            print(_row_text(row), flush=True)
    return rows


# --------------------------------------------------------------------------- report
def _row_text(r: dict) -> str:
    def num(v, fmt):
        return format(v, fmt) if v is not None else "-"
    seconds = num(r["seconds"], ".3f") if r["error"] is None else r["error"]
    return (f"{r['section']:<8} {r['part']:<19} {r['setting']:<26} {seconds:>10} "
            f"{num(r['ratio'], '.2f'):>6} {num(r['first_s'], '.1f'):>8}")


def print_table(rows: list[dict], args) -> None:
    flags = " ".join(f"{k}={'yes' if v else 'no'}"
                     for k, v in precision.reported_cpu_flags().items())
    size = "tiny heads" if args.tiny else "shapes config"
    print(f"\nCPU settings, {args.backbone}, {size}, {args.image_size} px, batch {args.batch}, "
          f"median of {args.repeats} (seconds; ratio = seconds / the part's reference: "
          f"{XLA_OFF} for xla, the default subprocess for threads and onednn)")
    print(f"CPU: {cpu_model()}; {available_cores()} cores; {flags}; "
          f"{ONEDNN_ENV}={os.environ.get(ONEDNN_ENV, 'unset')}")
    header = (f"{'section':<8} {'part':<19} {'setting':<26} {'seconds':>10} {'ratio':>6} "
              f"{'first s':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(_row_text(r))
    for r in rows:
        if r.get("detail"):
            print(f"  {r['part']} {r['setting']}: {r['detail']}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", choices=["resnet101", "resnet50"], default=None,
                   help="default resnet101 (resnet50 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (median); 5")
    p.add_argument("--batch", type=int, default=None, help="training batch (default 8)")
    p.add_argument("--image-size", type=int, default=128,
                   help="image side, a multiple of 64, >= 128")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--threads", nargs="+", type=parse_pair, default=None,
                   metavar="INTRA,INTER",
                   help="pool sizes to try (default: 0,0 then {cores, cores/2} x {1, 2})")
    p.add_argument("--onednn", nargs="+", choices=["0", "1"], default=["0", "1"],
                   help=f"{ONEDNN_ENV} values to try")
    p.add_argument("--tiny", action="store_true", help="TinyConfig's head sizes")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: ResNet-50, tiny heads, batch 2, 2 repeats")
    p.add_argument("--json", default=None, help="also write the rows and machine to this file")
    p.add_argument("--child", type=parse_pair, default=None, metavar="INTRA,INTER",
                   help=argparse.SUPPRESS)  # internal: one subprocess setting
    args = p.parse_args(argv)
    args.tiny = args.tiny or args.quick
    args.backbone = args.backbone or ("resnet50" if args.quick else "resnet101")
    if args.batch is None:  # not `or`: an explicit 0 must be refused, not replaced
        args.batch = 2 if args.quick else 8
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    args.threads = args.threads or thread_settings(available_cores())
    for name in ("repeats", "batch", "image_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.image_size % 64 or args.image_size < 128:  # the shapes need >= 80 px
        p.error(f"--image-size must be a multiple of 64 and >= 128, got {args.image_size}")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    # tf.function's retracing warning fires on the paired XLA on/off wrappers of one function.
    tf.get_logger().setLevel("ERROR")
    if args.child is not None:
        run_child(args)
        return []
    rows = []
    if "threads" in args.sections or "onednn" in args.sections:
        rows += process_rows(args)  # first: this process' TF stays idle meanwhile
    if "xla" in args.sections:
        with tempfile.TemporaryDirectory() as model_dir:
            rows = xla_rows(args, shapes_dataset(args), model_dir) + rows
    add_ratios(rows)
    print_table(rows, args)
    if args.json:
        report = {"cpu_model": cpu_model(), "cpu_flags": precision.reported_cpu_flags(),
                  "cores": available_cores(), "settings": vars(args), "rows": rows}
        with atomic_write(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
