"""Distributed training: strategy selection and a custom loop that runs under any
`tf.distribute.Strategy` (MirroredStrategy on local devices, MultiWorkerMirroredStrategy
over machines described by TF_CONFIG).

    from mrcnn.distribute import resolve_strategy, train_distributed
"""

from mrcnn.distribute.data import ShardedGenerator, distributed_dataset
from mrcnn.distribute.loop import train_distributed
from mrcnn.distribute.strategy import (
    DISTRIBUTIONS,
    is_chief,
    replicas_per_worker,
    resolve_strategy,
    worker_count,
)

__all__ = ["DISTRIBUTIONS", "ShardedGenerator", "distributed_dataset", "is_chief",
           "replicas_per_worker", "resolve_strategy", "train_distributed", "worker_count"]
