"""Benchmark of the training data pipeline (DataGenerator.__getitem__) on one CPU core.

Prints the median time of several runs to build one batch:
  - shapes: 8 images of 128 px (ShapesConfig, the main job's data);
  - large: 2 images of 1024 px ("square" mode, resized from 768x1024) with 30 instances each
    (a synthetic dataset), mini-masks on, as with the default Config;
and the ratio between the two. `--profile` adds the top functions of each case.
Numbers are noisy on a shared machine; compare medians of the same machine only.

Usage: python bench/data_pipeline.py [--runs 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One core: the target is per-core throughput; workers scale it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mrcnn.config import Config  # noqa: E402
from mrcnn.data.dataset import Dataset  # noqa: E402
from mrcnn.data.generator import DataGenerator  # noqa: E402
from samples.shapes.shapes import ShapesConfig, ShapesDataset, draw_shape  # noqa: E402

cv2.setNumThreads(1)


class LargeConfig(Config):
    """The default (COCO-like) image settings with two images per batch."""

    NAME = "bench_large"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 3


class LargeDataset(Dataset):
    """768x1024 images with 30 random shapes each, drawn on demand."""

    def load(self, count: int, instances: int = 30, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        for i, name in enumerate(("square", "circle", "triangle"), start=1):
            self.add_class("large", i, name)
        for i in range(count):
            shapes = []
            for _ in range(instances):
                kind = int(rng.integers(1, 4))
                s = int(rng.integers(15, 80))
                x, y = int(rng.integers(s, 1024 - s)), int(rng.integers(s, 768 - s))
                color = tuple(int(c) for c in rng.integers(0, 256, 3))
                shapes.append((kind, color, (x, y, s)))
            self.add_image("large", image_id=i, path=None, shapes=shapes)

    def load_image(self, image_id: int) -> np.ndarray:
        image = np.full((768, 1024, 3), 90, dtype=np.uint8)
        for kind, color, dims in self.image_info[image_id]["shapes"]:
            draw_shape(image, self.class_names[kind], dims, color)
        return image

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        shapes = self.image_info[image_id]["shapes"]
        masks = np.zeros((768, 1024, len(shapes)), dtype=bool)
        for i, (kind, _, (x, y, s)) in enumerate(shapes):
            # Draw in a patch around the shape (a triangle is 2 * 1.155 s wide), then paste.
            half = int(np.ceil(s * 1.16)) + 1
            y0, x0 = max(0, y - s), max(0, x - half)
            y1, x1 = min(768, y + s + 1), min(1024, x + half + 1)
            patch = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            draw_shape(patch, self.class_names[kind], (x - x0, y - y0, s), 1)
            masks[y0:y1, x0:x1, i] = patch.astype(bool)
        class_ids = np.array([kind for kind, _, _ in shapes], dtype=np.int32)
        return masks, class_ids


def time_batches(gen: DataGenerator, runs: int) -> float:
    """Median seconds per batch over `runs` batches (after one warm-up batch)."""
    gen[0]
    times = []
    for i in range(runs):
        start = time.perf_counter()
        gen[(i + 1) % len(gen)]
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def profile(gen: DataGenerator, runs: int, top: int = 12) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(runs):
        gen[i % len(gen)]
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed batches per case")
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()

    shapes = ShapesDataset()
    shapes.load_shapes(64, 128, 128, seed=0)
    shapes.prepare()
    shapes_gen = DataGenerator(shapes, ShapesConfig(), seed=0)

    large = LargeDataset()
    large.load(8)
    large.prepare()
    large_gen = DataGenerator(large, LargeConfig(), seed=0)

    small_s = time_batches(shapes_gen, args.runs)
    large_s = time_batches(large_gen, max(3, args.runs // 2))
    print(f"{'case':<42} {'median ms':>10}")
    print(f"{'shapes: batch of 8 at 128 px':<42} {small_s * 1e3:>10.1f}")
    print(f"{'large: batch of 2 at 1024 px, 30 instances':<42} {large_s * 1e3:>10.1f}")
    print(f"{'ratio large / shapes':<42} {large_s / small_s:>10.1f}")
    if args.profile:
        print("\n== shapes ==")
        profile(shapes_gen, args.runs)
        print("\n== large ==")
        profile(large_gen, max(3, args.runs // 2))


if __name__ == "__main__":
    main()
