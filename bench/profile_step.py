"""Where a training step and a detect() call spend their time: op-level self time from the
TensorFlow profiler, grouped by part of the network and by op type.

It builds the same models as bench/train_step.py (matterport's ShapesConfig, batch 8, 128 px;
the same --backbone, --precision, --matterport, --tiny, --image-size and --batch options),
traces each graph once, then records `--steps` heads steps, all-layers steps and detect()
calls under `tf.profiler.experimental` and reads the trace back with TensorFlow's own
converter ("framework_op_stats": self time per TF op, host side on a CPU).

Parts come from the op's name scope (the Keras layer that created it; gradient ops carry the
scope of the layer they differentiate):
  backbone (conv1, res*, bn*), fpn, rpn, proposals (ROI), targets (proposal_targets),
  roi_align (roi_align_*), classifier (mrcnn_class*, mrcnn_bbox*), mask (mrcnn_mask*),
  detection (mrcnn_detection and the mask-head gather/scatter), losses (*_loss), optimizer
  (the SGD update and gradient clipping) and other.

The shares are the useful output: absolute self times are inflated by the profiler and sum
over both cores' threads, so they can exceed the wall time. Run it with nothing else running.

Usage:
    python bench/profile_step.py [--backbone resnet101] [--precision float32] [--steps 3]
        [--matterport] [--top 15] [--json profile.json] [--config module:Class]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402

from bench.train_step import MATTERPORT, PRECISIONS, config_class, make_configs  # noqa: E402
from mrcnn import model as modellib  # noqa: E402
from mrcnn.data.generator import DataGenerator  # noqa: E402
from mrcnn.fileio import atomic_write  # noqa: E402
from samples.shapes.shapes import ShapesDataset  # noqa: E402

# (part, regex on the op's full name), first match wins.
PARTS = (
    ("optimizer", re.compile(r"(^|/)(SGD|sgd|optimizer|clip_by|global_norm|AssignVariable"
                             r"|ResourceApply|LossScale)", re.I)),
    ("losses", re.compile(r"(^|/)\w*_loss(_\d+)?(/|$)")),
    ("targets", re.compile(r"(^|/)proposal_targets(_\d+)?(/|$)")),
    ("proposals", re.compile(r"(^|/)ROI(_\d+)?(/|$)")),
    ("roi_align", re.compile(r"(^|/)roi_align\w*(/|$)")),
    ("mask", re.compile(r"(^|/)mrcnn_mask\w*(/|$)")),
    ("classifier", re.compile(r"(^|/)(mrcnn_class\w*|mrcnn_bbox\w*|pool_squeeze)(/|$)")),
    ("detection", re.compile(r"(^|/)(mrcnn_detection|detection_rows|scatter_\w*|"
                             r"positive_rois|\w*detections\w*)(/|$)", re.I)),
    ("rpn", re.compile(r"(^|/)(rpn_\w*|anchors)(/|$)")),
    ("fpn", re.compile(r"(^|/)fpn_\w*(/|$)")),
    ("backbone", re.compile(r"(^|/)(conv1(_\d+)?|bn_conv1\w*|res\d\w*|bn\d\w*|"
                            r"zero_padding\w*|max_pooling\w*)(/|$)")),
)


def part_of(op_name: str) -> str:
    """The network part an op (full TF name) belongs to; "other" when no scope matches."""
    for part, pattern in PARTS:
        if pattern.search(op_name):
            return part
    return "other"


def op_stats(logdir: str) -> list[dict]:
    """Rows of the profiler's framework_op_stats table: {type, operation, self_us}."""
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise FileNotFoundError(f"the profiler wrote no *.xplane.pb under {logdir}")
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
    if not ok:
        raise RuntimeError("TensorFlow could not convert the profile (framework_op_stats)")
    table = json.loads(data)[0]
    ids = [c["id"] for c in table["cols"]]
    rows = []
    for r in table["rows"]:
        values = dict(zip(ids, (c["v"] for c in r["c"]), strict=False))
        if values.get("operation") in ("IDLE", None):
            continue
        rows.append({"type": values["type"], "operation": values["operation"],
                     "self_us": float(values["total_self_time"])})
    return rows


def profile(fn, steps: int) -> list[dict]:
    """Op rows of `steps` calls of `fn` (already traced)."""
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(steps):
                fn()
        finally:
            tf.profiler.experimental.stop()
        return op_stats(logdir)


def summarize(rows: list[dict], top: int) -> dict:
    """Self-time shares by part, by op type, the top ops, and how many distinct gradient
    ops (names under gradient_tape/) each part has."""
    total = sum(r["self_us"] for r in rows) or 1.0
    by_part, by_type = collections.Counter(), collections.Counter()
    backward_ops = collections.Counter()
    for r in rows:
        part = part_of(r["operation"])
        by_part[part] += r["self_us"]
        by_type[r["type"]] += r["self_us"]
        if r["operation"].startswith("gradient_tape/"):
            backward_ops[part] += 1
    ops = sorted(rows, key=lambda r: -r["self_us"])[:top]
    return {"total_self_ms": total / 1e3,
            "parts": {k: v / total for k, v in by_part.most_common()},
            "types": {k: v / total for k, v in by_type.most_common(top)},
            "backward_ops": dict(backward_ops.most_common()),
            "top_ops": [{**r, "share": r["self_us"] / total, "part": part_of(r["operation"])}
                        for r in ops]}


def print_summary(title: str, summary: dict) -> None:
    print(f"\n{title}: {summary['total_self_ms']:.0f} ms op self time")
    print("  by part:  " + ", ".join(f"{k} {v:.0%}" for k, v in summary["parts"].items()))
    print("  by type:  " + ", ".join(f"{k} {v:.0%}" for k, v in summary["types"].items()))
    print(f"  {'share':>6} {'part':<11} {'type':<28} operation")
    for r in summary["top_ops"]:
        print(f"  {r['share']:>6.1%} {r['part']:<11} {r['type'][:28]:<28} {r['operation'][:90]}")


def profile_case(case: str, backbone: str, args, dataset, model_dir: str) -> dict:
    config, infer_config = make_configs(case, backbone, args.batch, args.image_size, args.tiny,
                                        config_class(args.config))
    inputs = DataGenerator(dataset, config, shuffle=False, seed=0, steps=1)[0][0]
    model = modellib.MaskRCNN("training", config, model_dir)
    out = {}
    for layers in ("heads", "all"):
        model.set_trainable(layers, verbose=0)
        model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
        step = lambda: model.keras_model.train_on_batch(inputs)  # noqa: E731
        step()
        out[layers] = summarize(profile(step, args.steps), args.top)
    model = step = None
    keras.backend.clear_session()
    inference = modellib.MaskRCNN("inference", infer_config, model_dir)
    image = dataset.load_image(0)
    inference.detect([image])
    out["detect"] = summarize(profile(lambda: inference.detect([image]), args.steps), args.top)
    keras.backend.clear_session()
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", choices=["resnet101", "resnet50"], default="resnet101")
    p.add_argument("--precision", choices=PRECISIONS, default="float32")
    p.add_argument("--matterport", action="store_true",
                   help="profile matterport's way (masks on all ROIs) instead")
    p.add_argument("--steps", type=int, default=3, help="profiled steps/calls per graph")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--tiny", action="store_true", help="TinyConfig's head sizes")
    p.add_argument("--config", default=None,
                   help="module:Class of the Config (default: ShapesConfig), e.g. "
                        "samples.shapes.train:DemoConfig")
    p.add_argument("--top", type=int, default=15, help="ops listed per graph")
    p.add_argument("--json", default=None, help="also write the summaries to this file")
    args = p.parse_args(argv)
    for name in ("steps", "batch", "top", "image_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.image_size % 64:
        p.error(f"--image-size must be a multiple of 64, got {args.image_size}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    case = MATTERPORT if args.matterport else args.precision
    dataset = ShapesDataset()
    dataset.load_shapes(args.batch, args.image_size, args.image_size, seed=0)
    dataset.prepare()
    with tempfile.TemporaryDirectory() as model_dir:
        result = profile_case(case, args.backbone, args, dataset, model_dir)
    for graph in ("heads", "all", "detect"):
        print_summary(f"{args.backbone} {case} {graph}", result[graph])
    if args.json:
        report = {"settings": vars(args), "graphs": result}
        with atomic_write(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
