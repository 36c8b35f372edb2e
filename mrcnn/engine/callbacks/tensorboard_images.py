"""`TensorBoardDetections`: a few validation images with their detections drawn, written to
TensorBoard every N epochs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.engine.runs import log_dir_of

logger = logging.getLogger(__name__)


class TensorBoardDetections(keras.callbacks.Callback):
    """Every `every` epochs, draws `detect_fn(images)` and writes it as TensorBoard images.

    Args:
        log_dir: the run folder (or an object with `log_dir`, e.g. MaskRCNN); images go to
            `{log_dir}/{subdir}`, beside Keras' TensorBoard scalars.
        images: a few [H, W, 3] uint8 images.
        detect_fn: images -> one result dict per image with "rois" [N, (y1, x1, y2, x2)]
            pixels, "masks" [H, W, N], "class_ids" [N] and optionally "scores" [N]
            (MaskRCNN.detect of an inference model sharing the weights).
        class_names: names indexed by class id.
        every: the epoch interval.
        tag: the image summary name.
        figsize: the size of each drawing in inches (at 100 dpi).
    """

    def __init__(self, log_dir: Any, images: Sequence[np.ndarray],
                 detect_fn: Callable[[list[np.ndarray]], Sequence[dict]],
                 class_names: Sequence[str], every: int = 1, tag: str = "detections",
                 subdir: str = "validation", figsize: tuple[float, float] = (4.0, 4.0)):
        super().__init__()
        if len(images) == 0:
            raise ValueError("TensorBoardDetections needs at least one image")
        if not callable(detect_fn):
            raise TypeError(f"detect_fn must be callable, got {type(detect_fn)}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.log_dir = log_dir
        self.images = [np.asarray(image) for image in images]
        self.detect_fn = detect_fn
        self.class_names = list(class_names)
        self.every = every
        self.tag = tag
        self.subdir = subdir
        self.figsize = figsize
        self.written_epochs: list[int] = []
        self._writer = None

    def render(self, results: Sequence[dict]) -> np.ndarray:
        """The drawings of `results` on the images: [n_images, height, width, 3] uint8."""
        import matplotlib.pyplot as plt

        from mrcnn.vis import drawing as visualize
        if len(results) != len(self.images):
            raise ValueError(f"detect_fn returned {len(results)} results for "
                             f"{len(self.images)} images")
        drawings = []
        for image, r in zip(self.images, results, strict=True):
            fig, ax = plt.subplots(1, figsize=self.figsize, dpi=100)
            visualize.display_instances(image, r["rois"], r["masks"], r["class_ids"],
                                        self.class_names, r.get("scores"), ax=ax)
            drawings.append(visualize.figure_to_array(fig))
        return np.stack(drawings)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        import tensorflow as tf

        batch = self.render(self.detect_fn(list(self.images)))
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(log_dir_of(self.log_dir), self.subdir))
        with self._writer.as_default():
            tf.summary.image(self.tag, batch, step=epoch, max_outputs=len(batch))
        self._writer.flush()
        self.written_epochs.append(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
