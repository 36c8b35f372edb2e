"""Subprocess body of tests/test_distribute.py (logical devices and TF_CONFIG must be set
before TensorFlow starts, so each run is a fresh process).

    python tests/distribute_worker.py mirrored OUT_JSON
        Two logical CPU devices: one training step of a tiny config under MirroredStrategy
        (IMAGES_PER_GPU=1, 2 replicas) and without a strategy (IMAGES_PER_GPU=2), from the same
        weights on the same global batch; writes both losses and the largest weight difference.
    python tests/distribute_worker.py multi_worker OUT_JSON MODEL_DIR EPOCHS [RESUME_H5]
        One worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG set by the caller):
        trains to EPOCHS (resuming from RESUME_H5) and writes its epoch, log dir and losses.
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]



def dataset(count):
    from samples.shapes.shapes import ShapesDataset

    ds = ShapesDataset()
    ds.load_shapes(count, 128, 128, seed=3)
    ds.prepare()
    return ds


def config_class(images_per_gpu):
    from tiny_config import TinyConfig

    class DistConfig(TinyConfig):
        NAME = "dist"
        IMAGES_PER_GPU = images_per_gpu
        STEPS_PER_EPOCH = 1
        VALIDATION_STEPS = 0
        # Every proposal becomes a training ROI (or none do), so the random sampling of
        # DetectionTargetLayer cannot pick different sets: the positive cap int(64 * 1/8) = 8
        # holds all 8 proposals, and 7 negatives per positive cover all negatives.
        POST_NMS_ROIS_TRAINING = 8
        TRAIN_ROIS_PER_IMAGE = 64
        ROI_POSITIVE_RATIO = 0.125
        WEIGHT_DECAY = 0.0001
        GRADIENT_CLIP_NORM = 0.5  # small enough to clip, so the global-norm rule is tested
    return DistConfig


def mirrored(out):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from mrcnn import model as modellib
    from mrcnn.data.generator import DataGenerator

    data = dataset(1)
    root = os.path.dirname(out)
    one = modellib.MaskRCNN("training", config_class(2)(), os.path.join(root, "one"),
                            strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
    start = one.keras_model.get_weights()
    # The loss of the first global batch (epoch 0, batch 0) at the starting weights.
    first = DataGenerator(data, one.config, seed=one.config.RANDOM_SEED, steps=1)[0][0]
    expected = float(one.keras_model.compute_all_losses(first, training=True)["loss"])
    h1 = one.train(data, None, 0.01, 1, "all", verbose=0)
    two = modellib.MaskRCNN("training", config_class(1)(), os.path.join(root, "two"),
                            strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    two.keras_model.set_weights(start)
    h2 = two.train(data, None, 0.01, 1, "all", verbose=0)
    diffs = [float(np.max(np.abs(a - b))) for a, b in
             zip(one.keras_model.get_weights(), two.keras_model.get_weights())]
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(start, one.keras_model.get_weights())]
    result = {"one": {k: v[0] for k, v in h1.history.items()},
              "two": {k: v[0] for k, v in h2.history.items()}, "expected_loss": expected,
              "batch_size": [one.config.BATCH_SIZE, two.config.BATCH_SIZE],
              "gpu_count": two.config.GPU_COUNT,
              "max_weight_diff": max(diffs), "max_weight_move": max(moved)}
    with open(out, "w") as f:
        json.dump(result, f)


def multi_worker(out, model_dir, epochs, resume=None):
    from mrcnn import model as modellib  # noqa: F401  (before TF runs any op: TF's rule)

    cfg = config_class(1)()
    cfg.DISTRIBUTION = "multi_worker"
    cfg.VALIDATION_STEPS = 1
    cfg.STEPS_PER_EPOCH = 2
    model = modellib.MaskRCNN("training", cfg, model_dir)
    if resume:
        model.load_weights(resume)
    start = model.epoch
    history = model.train(dataset(4), dataset(2), 0.01, int(epochs), "heads", verbose=0)
    with open(out, "w") as f:
        json.dump({"start_epoch": start, "epoch": model.epoch, "log_dir": model.log_dir,
                   "batch_size": model.config.BATCH_SIZE, "history": history.history}, f)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(sys.argv[2])
    else:
        multi_worker(*sys.argv[2:])
