"""Memory over repeated `train()` and `detect()` calls in one process (issue 11).

Trains a tiny shapes model (tests/tiny_config.py's sizes, one step per epoch) with the given
presets, round after round, as matterport's workflow does (heads, then 4+, then all), and
after every call prints:
  - RSS MiB after `gc.collect()`, and again after glibc's `malloc_trim(0)` (what the C heap
    kept but no longer uses: allocator retention, not live objects);
  - live Python objects (`gc.get_objects()`) and the types that grew most since the last call
    (a real leak shows up here: e.g. `Operation`, `SymbolicTensor` of a train graph);
  - graph functions registered in TF's eager context, `CustomGradient-N` entries of TF's
    gradient registry, and live threads.
Then it runs `detect()` `--detect-calls` times after a warm-up and prints the same figures.

Usage:
    python bench/memory_growth.py [--presets heads,4+,all] [--rounds 3] [--detect-calls 30]
        [--json memory.json]
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from tiny_config import TinyConfig  # noqa: E402

from mrcnn import model as modellib  # noqa: E402
from mrcnn.engine.host_allocator import release_free_memory, rss_mib  # noqa: E402
from mrcnn.fileio import atomic_write  # noqa: E402
from samples.shapes.shapes import ShapesDataset  # noqa: E402


class MemoryConfig(TinyConfig):
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


class DetectConfig(TinyConfig):
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0


def tf_registries() -> tuple[int, int]:
    """(graph functions in the eager context, CustomGradient entries of the gradient registry)."""
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops

    gradients = sum(name.startswith("CustomGradient-") for name in ops._gradient_registry._registry)
    return len(context.context().list_function_names()), gradients


class Probe:
    """Takes the figures of the module docstring, and the object-type growth since last time."""

    def __init__(self):
        self.types: collections.Counter = collections.Counter()

    def take(self, label: str, seconds: float) -> dict:
        gc.collect()
        rss = rss_mib()
        release_free_memory()
        types = collections.Counter(type(o).__name__ for o in gc.get_objects())
        grown = sorted(((name, types[name] - self.types[name]) for name in types
                        if types[name] - self.types[name] > 0), key=lambda kv: -kv[1])[:5]
        self.types = types
        functions, gradients = tf_registries()
        row = {"call": label, "seconds": round(seconds, 1), "rss_mib": round(rss),
               "rss_trimmed_mib": round(rss_mib()), "objects": sum(types.values()),
               "graph_functions": functions, "custom_gradients": gradients,
               "threads": threading.active_count(), "grown_types": grown}
        print(f"{label:14s} {row['seconds']:6.1f} {row['rss_mib']:8d} {row['rss_trimmed_mib']:8d} "
              f"{row['objects']:9d} {functions:6d} {gradients:5d} {row['threads']:4d}  "
              + ", ".join(f"{n}+{d}" for n, d in grown), flush=True)
        return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", default="heads,4+,all", help="comma-separated train() layers")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--detect-calls", type=int, default=30)
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)
    presets = [name.strip() for name in args.presets.split(",") if name.strip()]

    data = ShapesDataset()
    data.load_shapes(4, 128, 128, seed=1)
    data.prepare()
    print(f"{'call':14s} {'s':>6s} {'RSS':>8s} {'trimmed':>8s} {'objects':>9s} {'funcs':>6s} "
          f"{'grads':>5s} {'thr':>4s}  grown types")
    probe = Probe()
    rows = [probe.take("start", 0.0)]
    with tempfile.TemporaryDirectory() as model_dir:
        model = modellib.MaskRCNN("training", MemoryConfig(), model_dir)
        epoch = 0
        for round_no in range(args.rounds):
            for layers in presets:
                epoch += 1
                start = time.perf_counter()
                model.train(data, data, 0.001, epochs=epoch, layers=layers, workers=1,
                            verbose=0)
                rows.append(probe.take(f"r{round_no + 1} {layers}", time.perf_counter() - start))
        del model
        detector = modellib.MaskRCNN("inference", DetectConfig(), model_dir)
        image = data.load_image(0)
        start = time.perf_counter()
        for _ in range(5):
            detector.detect([image])
        rows.append(probe.take("detect warm-up", time.perf_counter() - start))
        start = time.perf_counter()
        for _ in range(args.detect_calls):
            detector.detect([image])
        rows.append(probe.take(f"detect x{args.detect_calls}", time.perf_counter() - start))
    report = {"presets": presets, "rounds": args.rounds, "rows": rows}
    if args.json:
        with atomic_write(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
