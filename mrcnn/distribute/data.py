"""Input for distributed training: each worker loads its share of every global batch.

A global batch of `BATCH_SIZE = IMAGES_PER_GPU * replicas` images is the same as for one
process: item k of batch `idx` is the image at position `idx * BATCH_SIZE + k` of the epoch's
permutation, with randomness from `(seed, epoch, idx, k)` (`mrcnn.data.generator`). Worker w
of W loads the items `k` in `[w * B / W, (w + 1) * B / W)` only, so the workers together see
exactly the batches one process would, and no worker loads another's images.

`distributed_dataset` wraps that shard in `tf.data.Dataset.from_generator`, splits it into
per-replica batches of IMAGES_PER_GPU and hands it to
`strategy.distribute_datasets_from_function`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from mrcnn.data.generator import DataGenerator
from mrcnn.data.targets import build_rpn_targets
from mrcnn.structures.checks import check_int


class ShardedGenerator(DataGenerator):
    """A `DataGenerator` that yields one worker's share of each global batch.

    Args:
        dataset, config, **kwargs: as for `DataGenerator`; `batch_size` is the global one.
        shard: this worker's index, in [0, num_shards).
        num_shards: the number of workers; must divide the global batch size.

    Raises:
        ValueError: a bad shard index, or a batch size that the shards cannot split evenly.
    """

    def __init__(self, dataset: Any, config: Any, *, shard: int = 0, num_shards: int = 1,
                 **kwargs: Any):
        super().__init__(dataset, config, **kwargs)
        check_int("num_shards", num_shards, minimum=1)
        check_int("shard", shard, minimum=0)
        if shard >= num_shards:
            raise ValueError(f"shard must be < num_shards={num_shards}, got {shard}")
        if self.batch_size % num_shards:
            raise ValueError(f"batch_size={self.batch_size} does not split evenly into "
                             f"num_shards={num_shards} workers")
        if self.random_rois:
            raise ValueError("ShardedGenerator serves training batches only (random_rois=0)")
        self.shard = int(shard)
        self.num_shards = int(num_shards)

    @property
    def shard_size(self) -> int:
        """Images per batch on this worker."""
        return self.batch_size // self.num_shards

    def __getitem__(self, idx: int) -> tuple[tuple[np.ndarray, ...]]:
        """This worker's items of global batch `idx`: `(inputs,)` with shard_size images."""
        if idx < 0:
            raise IndexError(f"batch index must be >= 0, got {idx}")
        first = self.shard * self.shard_size
        items = []
        for k in range(first, first + self.shard_size):
            rng = np.random.default_rng([self.seed, self.epoch, int(idx), k])
            image, meta, masks, class_ids, boxes = self._load_item(
                int(idx) * self.batch_size + k, rng)
            rpn_match, rpn_bbox = build_rpn_targets(image.shape, self.anchors, class_ids, boxes,
                                                    self.config, rng=rng)
            if boxes.shape[0] > self.config.MAX_GT_INSTANCES:
                ids = np.sort(rng.choice(boxes.shape[0], self.config.MAX_GT_INSTANCES,
                                         replace=False))
                class_ids, boxes, masks = class_ids[ids], boxes[ids], masks[:, :, ids]
            items.append((image, meta, rpn_match, rpn_bbox, class_ids, boxes, masks, ()))
        return (self._collate(items),)


def input_signature(keras_model: Any) -> tuple[tf.TensorSpec, ...]:
    """TensorSpecs of the model's inputs with a free batch dimension (from_generator's
    output_signature)."""
    return tuple(tf.TensorSpec((None,) + tuple(t.shape[1:]), tf.as_dtype(t.dtype),
                               name=t.name) for t in keras_model.inputs)


def distributed_dataset(strategy: tf.distribute.Strategy,
                        make_generator: Callable[[int, int], ShardedGenerator],
                        signature: tuple[tf.TensorSpec, ...], epoch: int,
                        per_replica_batch: int, steps: int) -> Any:
    """One epoch of training batches as a distributed dataset of per-replica batches.

    Args:
        strategy: the training strategy.
        make_generator: `(shard, num_shards) -> ShardedGenerator`, called on each worker with
            its input pipeline's index and count.
        signature: `input_signature(keras_model)`.
        epoch: the epoch whose batches to serve (sets the permutation and random streams).
        per_replica_batch: IMAGES_PER_GPU.
        steps: batches in the epoch.

    Returns:
        A `tf.distribute.DistributedDataset`; each element is a tuple of per-replica inputs
        `[IMAGES_PER_GPU, ...]` in the model's input order.
    """
    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        generator = make_generator(context.input_pipeline_id, context.num_input_pipelines)
        generator.epoch = epoch

        def batches():
            for idx in range(steps):
                yield generator[idx][0]

        ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
        # The worker's shard holds one per-replica batch for each of its replicas, in order.
        ds = ds.unbatch().batch(per_replica_batch, drop_remainder=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)  # ShardedGenerator shards already
        return ds.with_options(options).prefetch(2)

    return strategy.distribute_datasets_from_function(dataset_fn)
