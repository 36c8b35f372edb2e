"""Keras callbacks for Mask R-CNN training, composable through
`MaskRCNN.train(custom_callbacks=...)`.

- `WarmupLRSchedule`: linear warmup, then step or cosine decay, set per batch and logged as "lr"
  (`lr_at` is the pure function behind it).
- `KeepLastCheckpoints`: deletes all but the newest N `mask_rcnn_{name}_{epoch:04d}.h5` of a run.
- `BestCheckpoint`: keeps `mask_rcnn_{name}_best.h5` and a JSON record of the best epoch.
- `EarlyStopping`: Keras' own, with the direction of our metric names ("*loss", "mAP") known.
- `TensorBoardDetections`: draws a few validation detections into TensorBoard each epoch.
- `EpochLog`: the run's epoch values in `metrics.json` of the run folder, over resumed runs.
- `EpochMetricCallback`: the base class of callbacks that add values to the epoch logs
  (`mrcnn.engine.mean_ap.MeanAPCallback` adds "mAP").

The order in which `MaskRCNN.train` runs the callbacks (`mrcnn.engine.train_loop`):
`NonFiniteLossGuard`; the custom `EpochMetricCallback`s; Keras' TensorBoard; the epoch
checkpoint writer `MatterportCheckpoint`; the other custom callbacks in the order given. So at
the end of an epoch every added metric is in the logs and the epoch's checkpoint exists when
the custom callbacks run.
"""

from mrcnn.engine.callbacks.base import (
    EarlyStopping,
    EpochMetricCallback,
    NonFiniteLossGuard,
    monitor_mode,
)
from mrcnn.engine.callbacks.checkpoints import (
    BestCheckpoint,
    KeepLastCheckpoints,
    MatterportCheckpoint,
)
from mrcnn.engine.callbacks.epoch_log import EpochLog, read_epoch_log
from mrcnn.engine.callbacks.lr_schedule import WarmupLRSchedule, lr_at
from mrcnn.engine.callbacks.tensorboard_images import TensorBoardDetections

__all__ = [
    "BestCheckpoint",
    "EarlyStopping",
    "EpochLog",
    "EpochMetricCallback",
    "KeepLastCheckpoints",
    "MatterportCheckpoint",
    "NonFiniteLossGuard",
    "TensorBoardDetections",
    "WarmupLRSchedule",
    "lr_at",
    "read_epoch_log",
    "monitor_mode",
]
