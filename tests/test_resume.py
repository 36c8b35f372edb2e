"""Exact resume: a run stopped after epoch k (or SIGKILLed during a later epoch) and resumed
from its checkpoint ends with the uninterrupted run's weights, bit for bit (CPU, one data
worker); and what makes it so: the
per-(seed, epoch) ROI sampling state, the checkpoint guard against exploded weights, and the
warning for weights loads that leave the backbone random."""

import logging
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from tiny_config import TinyConfig

from mrcnn import model as modellib
from mrcnn.checkpoint.report import LoadReport
from mrcnn.engine.callbacks import MatterportCheckpoint, WarmupLRSchedule
from mrcnn.engine.callbacks.checkpoints import MAX_ABS_WEIGHT, unsafe_weights
from mrcnn.engine.train_loop import SamplingSeedReset
from mrcnn.engine.weights import unloaded_layers, warn_unloaded
from mrcnn.modeling.layers.detection_target import DetectionTargetLayer
from samples.shapes.shapes import ShapesDataset


# --------------------------------------------------------------------------- ROI sampling seed
def _targets_inputs():
    rng = np.random.default_rng(3)
    y1x1 = rng.uniform(0, 0.6, size=(2, 40, 2))
    proposals = np.concatenate([y1x1, y1x1 + rng.uniform(0.1, 0.4, size=(2, 40, 2))], -1)
    gt_boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.3, 0.2, 0.8, 0.6]]] * 2, np.float32)
    gt_class_ids = np.array([[1, 2]] * 2, np.int32)
    gt_masks = np.ones((2, 8, 8, 2), np.float32)
    return [proposals.astype(np.float32), gt_class_ids, gt_boxes, gt_masks]


def _layer(seed):
    return DetectionTargetLayer(train_rois_per_image=8, roi_positive_ratio=0.33,
                                mask_shape=(4, 4), use_mini_mask=True, seed=seed)


def test_seeded_sampling_is_a_function_of_the_seed_state():
    inputs = _targets_inputs()
    layer = _layer(seed=5)
    first = [o.numpy() for o in layer(inputs, training=True)]
    second = [o.numpy() for o in layer(inputs, training=True)]
    # The state advanced one step: another draw of the 28 negatives (and 2 images differ).
    assert not np.array_equal(first[0], second[0])
    assert layer.sampling_seed.state.numpy().tolist() == [5, 2]
    layer.sampling_seed.state.assign(np.array([5, 0], dtype=layer.sampling_seed.state.dtype))
    again = [o.numpy() for o in layer(inputs, training=True)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # A second layer with the same seed draws the same ROIs; the two images of a batch
    # draw different ones (the image index is folded into the seed).
    other = [o.numpy() for o in _layer(seed=5)(inputs, training=True)]
    np.testing.assert_array_equal(first[0], other[0])
    assert not np.array_equal(first[0][0], first[0][1])


def test_the_seed_state_is_not_a_weight_and_survives_get_config():
    layer = _layer(seed=9)
    layer(_targets_inputs(), training=True)
    assert layer.weights == [] and len(layer.variables) == 1
    assert DetectionTargetLayer.from_config(layer.get_config()).seed == 9
    assert _layer(seed=None).sampling_seed is None
    with pytest.raises(TypeError, match="'7'"):
        _layer(seed="7")


def test_sampling_seed_reset_sets_a_state_per_seed_and_epoch():
    targets = _layer(seed=1)
    inputs = [keras.Input((40, 4)), keras.Input((2,), dtype="int32"), keras.Input((2, 4)),
              keras.Input((8, 8, 2))]
    inner = keras.Model(inputs, targets(inputs)[0])
    outer_inputs = [keras.Input(x.shape[1:], dtype=x.dtype) for x in inputs]
    model = keras.Model(outer_inputs, inner(outer_inputs))  # nested models are searched
    reset = SamplingSeedReset(seed=1)
    reset.set_model(model)
    assert reset.generators(model) == [targets.sampling_seed]
    reset.on_epoch_begin(3)
    state3 = targets.sampling_seed.state.numpy().tolist()
    assert state3 == [reset.epoch_state(3), 0]
    reset.on_epoch_begin(4)
    assert targets.sampling_seed.state.numpy().tolist()[0] != state3[0]
    assert SamplingSeedReset(seed=2).epoch_state(3) != state3[0]
    reset.on_epoch_begin(3)
    assert targets.sampling_seed.state.numpy().tolist() == state3


# --------------------------------------------------------------------------- weight guard
def _toy():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("value, bad", [(1.0, False), (MAX_ABS_WEIGHT, False),
                                        (1e38, True), (np.inf, True), (np.nan, True)])
def test_unsafe_weights_bound(value, bad):
    model = _toy()
    kernel = model.get_layer("fc").kernel
    kernel.assign(np.full((3, 2), value, np.float32))
    assert unsafe_weights(model) == (["fc/kernel"] if bad else [])


def test_exploded_but_finite_weights_are_never_checkpointed(tmp_path, caplog):
    model = _toy()
    template = str(tmp_path / "mask_rcnn_toy_{epoch:04d}.h5")
    checkpoint = MatterportCheckpoint(template)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    assert os.listdir(tmp_path) == ["mask_rcnn_toy_0001.h5"]
    model.get_layer("fc").bias.assign([1e38, 0.0])  # the loss may still be finite
    with caplog.at_level(logging.ERROR):
        checkpoint.on_epoch_end(1, {"loss": 1.0})
    assert os.listdir(tmp_path) == ["mask_rcnn_toy_0001.h5"]
    assert checkpoint.failure == {"epoch": 2, "weights": ["fc/bias"]}
    assert model.stop_training and "fc/bias" in caplog.text
    with pytest.raises(ValueError, match="max_abs_weight"):
        MatterportCheckpoint(template, max_abs_weight=0)


# --------------------------------------------------------------------------- unloaded layers
def test_a_load_leaving_backbone_layers_random_warns(caplog):
    # ResNet-50 weights loaded by name into ResNet-101: res4g..res4w are missing in the file.
    missing = [f"{kind}4{block}_branch2{part}" for block in "ghijklmnopqrstuvw"
               for kind in ("res", "bn") for part in "abc"]
    report = LoadReport(loaded=["conv1", "res4a_branch2a", "mrcnn_mask"],
                        missing_in_file=missing, source="r50.h5")
    with caplog.at_level(logging.WARNING):
        assert warn_unloaded(report) == missing
    assert len(missing) == 102
    assert "left 102 of 105" in caplog.text and "res4g_branch2a" in caplog.text


def test_heads_left_to_train_from_scratch_stay_quiet(caplog):
    # ImageNet weights (no heads in the file) and COCO weights with the heads excluded.
    imagenet = LoadReport(loaded=["conv1", "bn_conv1"],
                          missing_in_file=["fpn_c5p5", "rpn_model", "mrcnn_class_logits",
                                           "mrcnn_mask"])
    coco = LoadReport(loaded=["conv1", "fpn_c5p5"], excluded=["mrcnn_bbox_fc", "mrcnn_mask"])
    with caplog.at_level(logging.WARNING):
        assert warn_unloaded(imagenet) == [] and warn_unloaded(coco) == []
    assert caplog.text == ""
    mismatched = LoadReport(mismatched=[("conv1", ((7, 7, 3, 64),), ((7, 7, 4, 64),))])
    assert unloaded_layers(mismatched) == ["conv1"]


# --------------------------------------------------------------------------- exact resume
class ResumeConfig(TinyConfig):
    STEPS_PER_EPOCH = 2
    VALIDATION_STEPS = 1


def _dataset():
    dataset = ShapesDataset()
    dataset.load_shapes(6, 128, 128, seed=1)
    dataset.prepare()
    return dataset


def _train(model_dir, dataset, stops, resume=False):
    """Train to stops[-1], starting a new model from find_last() at each earlier stop (and
    at the first one too with `resume`)."""
    model = None
    for target in stops:
        keras.utils.set_random_seed(123)  # only the first model's initial weights count
        fresh = modellib.MaskRCNN("training", ResumeConfig(), model_dir)
        if model is not None or resume:
            fresh.load_weights(fresh.find_last(), by_name=True)
            assert model is None or fresh.epoch == model.epoch
        model = fresh
        # Warmup over 3 steps, then a cosine over 3 epochs: the rate changes at every step.
        schedule = WarmupLRSchedule(warmup_steps=3, decay="cosine", total=3)
        model.train(dataset, dataset, 0.02, epochs=target, layers="heads", workers=1,
                    verbose=0, custom_callbacks=[schedule])
    return model


@pytest.mark.slow
def test_stop_and_resume_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    """Run in a fresh process with TF's op determinism and one intra-op thread: with several
    threads oneDNN's reductions may sum in another order from run to run (seen here: 137 of
    65536 values of one kernel 1 ulp apart), which no checkpoint can pin."""
    tests = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path[:0] = [{tests!r}, {os.path.dirname(tests)!r}]\n"
            "import tensorflow as tf\n"
            "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
            "tf.config.experimental.enable_op_determinism()\n"
            "import test_resume\n"
            f"test_resume.check_exact_resume({str(tmp_path)!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=1500, cwd=os.path.dirname(tests))
    assert proc.returncode == 0, proc.stderr[-4000:]


# A process training the same run to epoch 3 (with the determinism of the parent process).
_KILLED_CHILD = """
import sys; sys.path[:0] = [{tests!r}, {repo!r}]
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()
import test_resume
test_resume._train({folder!r}, test_resume._dataset(), [3])
"""


def _train_killed_and_resumed(folder: pathlib.Path, dataset):
    """Start the run in a child process, SIGKILL it during epoch 2 or 3 (after epoch 1's
    checkpoint is complete), then resume from find_last() here to epoch 3."""
    tests = os.path.dirname(os.path.abspath(__file__))
    code = _KILLED_CHILD.format(tests=tests, repo=os.path.dirname(tests), folder=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.path.dirname(tests),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    deadline = time.monotonic() + 900
    while not list(folder.glob("*/mask_rcnn_tiny_0001.h5")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the child exited with {proc.returncode} before epoch 1")
        time.sleep(0.01)
    time.sleep(random.Random(7).uniform(0.0, 0.5))
    assert proc.poll() is None, "the child finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    model = modellib.MaskRCNN("training", ResumeConfig(), str(folder))
    last = model.find_last()
    assert not last.endswith("_0003.h5"), last  # the kill did interrupt the run
    return _train(str(folder), dataset, [3], resume=True), last


def check_exact_resume(folder: str) -> None:
    """Train 3 epochs straight, 1 + 2 epochs with a resume, and 3 epochs killed with SIGKILL
    and resumed; assert identical states."""
    tmp_path = pathlib.Path(folder)
    dataset = _dataset()
    straight = _train(str(tmp_path / "a"), dataset, [3])
    resumed = _train(str(tmp_path / "b"), dataset, [1, 3])
    killed, last = _train_killed_and_resumed(tmp_path / "k", dataset)
    weights_a = [w.numpy() for w in straight.keras_model.weights]
    for other in (resumed, killed):
        weights_b = [w.numpy() for w in other.keras_model.weights]
        for a, b, w in zip(weights_a, weights_b, straight.keras_model.weights, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{w.path} (killed at {last})")
    opt_k = {v.path.split("/", 1)[-1]: v.numpy() for v in killed.keras_model.optimizer.variables}
    initial = modellib.MaskRCNN("training", ResumeConfig(), str(tmp_path / "c"))
    initial.load_weights(os.path.join(resumed.log_dir, "mask_rcnn_tiny_0001.h5"), by_name=True)
    changed = sum(not np.array_equal(a, w.numpy())
                  for a, w in zip(weights_a, initial.keras_model.weights, strict=True))
    assert changed >= 20  # epochs 2-3 did train the heads
    opt_a = {v.path.split("/", 1)[-1]: v.numpy() for v in straight.keras_model.optimizer.variables}
    opt_b = {v.path.split("/", 1)[-1]: v.numpy() for v in resumed.keras_model.optimizer.variables}
    assert opt_a["iteration"] == opt_b["iteration"] == opt_k["iteration"] == 6
    for key in opt_a:
        np.testing.assert_array_equal(opt_a[key], opt_b[key], err_msg=key)
        np.testing.assert_array_equal(opt_a[key], opt_k[key], err_msg=key)
