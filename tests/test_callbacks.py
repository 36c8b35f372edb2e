"""Tests for mrcnn.engine.callbacks: LR schedule values, checkpoint file sets, early stopping and
TensorBoard detection images, each proved by training a toy Dense model for a few epochs."""

import glob
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from mrcnn.engine.callbacks import (  # noqa: E402
    BestCheckpoint,
    EarlyStopping,
    KeepLastCheckpoints,
    TensorBoardDetections,
    WarmupLRSchedule,
    lr_at,
)

STEPS = 4  # 32 samples, batch 8


def _toy_model(lr=0.1):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
                              keras.layers.Dense(1, name="out")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


def _fit(model, callbacks, epochs, initial_epoch=0, validation=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    return model.fit(x, y, batch_size=8, epochs=epochs, initial_epoch=initial_epoch,
                     callbacks=callbacks, verbose=0,
                     validation_data=(x[:8], y[:8]) if validation else None)


class _Logs(keras.callbacks.Callback):
    """Puts scripted values of a metric into the epoch logs (as the mAP callback would)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        if self.values[epoch] is not None:
            logs[self.key] = self.values[epoch]


class _WriteCheckpoints(keras.callbacks.Callback):
    """Writes an empty file named like a matterport checkpoint each epoch."""

    def __init__(self, folder, name="toy"):
        super().__init__()
        self.template = os.path.join(folder, f"mask_rcnn_{name}_" + "{epoch:04d}.h5")

    def on_epoch_end(self, epoch, logs=None):
        with open(self.template.format(epoch=epoch + 1), "w") as handle:
            handle.write(f"epoch {epoch + 1}")


class _RecordLR(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


# ---------------------------------------------------------------- lr_at golden values

@pytest.mark.parametrize("step, expected", [
    (0, 0.001),      # warmup_factor * base
    (5, 0.0055),     # 0.01 * (0.1 * 0.5 + 0.5)
    (10, 0.01),      # warmup done
    (19, 0.01),
    (20, 0.001),     # first milestone
    (35, 0.0001),    # both milestones
])
def test_lr_at_warmup_then_step_decay(step, expected):
    lr = lr_at(step, 0.01, warmup_steps=10, warmup_factor=0.1, decay="step",
               milestones=(20, 30), gamma=0.1)
    assert lr == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("step, expected", [
    (0, 0.01),
    (25, 0.001 + 0.0045 * (1 + 0.7071067811865476)),
    (50, 0.0055),
    (100, 0.001),
    (200, 0.001),    # flat at the floor after total_steps
])
def test_lr_at_cosine_to_floor(step, expected):
    lr = lr_at(step, 0.01, decay="cosine", total_steps=100, min_lr=0.001)
    assert lr == pytest.approx(expected, rel=1e-9)


def test_lr_at_cosine_with_warmup_multiplies():
    # step 2 of 4 warmup steps, factor 0.5: 0.75 * cosine(2 of 8) = 0.75 * 0.5 * (1 + cos(pi/4))
    lr = lr_at(2, 1.0, warmup_steps=4, warmup_factor=0.5, decay="cosine", total_steps=8)
    assert lr == pytest.approx(0.75 * 0.5 * (1 + 0.7071067811865476))


def test_lr_at_constant():
    assert lr_at(1000, 0.02) == 0.02


@pytest.mark.parametrize("kwargs", [
    {"step": -1},
    {"base_lr": 0.0},
    {"warmup_steps": -1},
    {"warmup_factor": 0.0},
    {"warmup_factor": 1.5},
    {"decay": "linear"},
    {"decay": "step", "milestones": (30, 20)},
    {"decay": "step", "milestones": (10,), "gamma": 0.0},
    {"decay": "cosine"},
    {"decay": "cosine", "total_steps": 10, "min_lr": 0.5},
])
def test_lr_at_bad_arguments(kwargs):
    args = {"step": 0, "base_lr": 0.1, **kwargs}
    with pytest.raises(ValueError):
        lr_at(**args)


# ---------------------------------------------------------------- WarmupLRSchedule

def test_schedule_sets_lr_per_batch_and_logs_it():
    model = _toy_model(lr=0.1)  # base_lr taken from the optimizer
    schedule = WarmupLRSchedule(warmup_steps=4, warmup_factor=0.5, decay="step",
                                milestones=(2,), gamma=0.1, unit="epoch")
    record = _RecordLR()
    history = _fit(model, [schedule, record], epochs=3)
    # Warmup 0.05, 0.0625, 0.075, 0.0875 in epoch 1; 0.1 in epoch 2; 0.01 from step 8.
    expected = [0.05, 0.0625, 0.075, 0.0875] + [0.1] * 4 + [0.01] * 4
    assert record.lrs == pytest.approx(expected, rel=1e-6)
    assert history.history["lr"] == pytest.approx([0.0875, 0.1, 0.01], rel=1e-6)


def test_schedule_resumes_from_initial_epoch_with_step_milestones():
    model = _toy_model(lr=1.0)
    schedule = WarmupLRSchedule(base_lr=0.2, decay="step", milestones=(6,), unit="step")
    record = _RecordLR()
    _fit(model, [schedule, record], epochs=2, initial_epoch=1)  # global steps 4..7
    assert record.lrs == pytest.approx([0.2, 0.2, 0.02, 0.02], rel=1e-6)


def test_schedule_cosine_by_epochs():
    model = _toy_model()
    schedule = WarmupLRSchedule(base_lr=0.1, decay="cosine", total=2, min_lr=0.0)
    record = _RecordLR()
    _fit(model, [schedule, record], epochs=3)
    # total = 8 steps: 0.05 * (1 + cos(pi * s / 8)); flat at 0 after step 8.
    expected = [0.05 * (1 + np.cos(np.pi * s / 8)) for s in range(8)] + [0.0] * 4
    assert record.lrs == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="unit"):
        WarmupLRSchedule(unit="batch")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        WarmupLRSchedule(steps_per_epoch=0)
    with pytest.raises(ValueError, match="total_steps"):
        WarmupLRSchedule(decay="cosine")


# ---------------------------------------------------------------- KeepLastCheckpoints

def test_keep_last_leaves_newest_n(tmp_path):
    (tmp_path / "mask_rcnn_other_0001.h5").write_text("another config's run")
    (tmp_path / "notes.txt").write_text("x")
    keeper = KeepLastCheckpoints(str(tmp_path), keep=2, name="toy")
    _fit(_toy_model(), [_WriteCheckpoints(str(tmp_path)), keeper], epochs=5)
    assert sorted(os.listdir(tmp_path)) == [
        "mask_rcnn_other_0001.h5", "mask_rcnn_toy_0004.h5", "mask_rcnn_toy_0005.h5",
        "notes.txt"]
    assert [os.path.basename(p) for p in keeper.deleted] == [
        "mask_rcnn_toy_0001.h5", "mask_rcnn_toy_0002.h5", "mask_rcnn_toy_0003.h5"]


def test_keep_last_never_deletes_best_source(tmp_path):
    writer = _WriteCheckpoints(str(tmp_path))
    # Loss-like metric: best at epoch 2.
    best = BestCheckpoint(str(tmp_path / "mask_rcnn_toy_best.h5"), monitor="val_metric_loss",
                          checkpoint_template=writer.template)
    keeper = KeepLastCheckpoints(str(tmp_path), keep=1, name="toy")
    _fit(_toy_model(), [writer, _Logs("val_metric_loss", [0.5, 0.1, 0.3, 0.4]), best, keeper],
         epochs=4)
    assert sorted(os.listdir(tmp_path)) == [
        "mask_rcnn_toy_0002.h5", "mask_rcnn_toy_0004.h5", "mask_rcnn_toy_best.h5",
        "mask_rcnn_toy_best.json"]


def test_keep_last_reads_log_dir_attribute_and_custom_pattern(tmp_path):
    class Holder:
        log_dir = str(tmp_path)

    for epoch in range(1, 5):
        (tmp_path / f"run-{epoch}.weights").write_text("w")
    keeper = KeepLastCheckpoints(Holder(), keep=3, pattern=r"run-(?P<epoch>\d+)\.weights$")
    keeper.on_epoch_end(0)
    assert sorted(os.listdir(tmp_path)) == ["run-2.weights", "run-3.weights", "run-4.weights"]


def test_keep_last_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        KeepLastCheckpoints(str(tmp_path), keep=0)
    with pytest.raises(ValueError, match="epoch"):
        KeepLastCheckpoints(str(tmp_path), pattern=r"mask_rcnn_(\d+)\.h5")


# ---------------------------------------------------------------- BestCheckpoint

def test_best_checkpoint_copies_best_epoch_file_and_records_it(tmp_path):
    writer = _WriteCheckpoints(str(tmp_path))
    best_path = str(tmp_path / "mask_rcnn_toy_best.h5")
    best = BestCheckpoint(best_path, monitor="mAP", checkpoint_template=writer.template)
    assert best.mode == "max"
    _fit(_toy_model(), [writer, _Logs("mAP", [0.2, None, 0.5, 0.4, 0.5]), best], epochs=5)
    with open(best_path) as handle:
        assert handle.read() == "epoch 3"  # a copy of the epoch-3 checkpoint
    with open(str(tmp_path / "mask_rcnn_toy_best.json")) as handle:
        record = json.load(handle)
    assert record == {"monitor": "mAP", "mode": "max", "value": 0.5, "epoch": 3,
                      "source": writer.template.format(epoch=3), "path": best_path}
    assert (best.best, best.best_epoch) == (0.5, 3)
    assert not glob.glob(str(tmp_path / ".tmp_*"))


def test_best_checkpoint_writes_weights_without_epoch_file_and_resumes(tmp_path):
    best_path = str(tmp_path / "mask_rcnn_toy_best.h5")
    model = _toy_model()
    best = BestCheckpoint(best_path, monitor="val_loss", mode="min")
    _fit(model, [_Logs("val_loss", [3.0, 2.0, 2.5]), best], epochs=3)
    with h5py.File(best_path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        assert "hidden" in names and "out" in names
        assert f["out/out/kernel:0"].shape == (4, 1)
        assert f["mrcnn_extras"].attrs["epoch"] == 2
    with open(str(tmp_path / "mask_rcnn_toy_best.json")) as handle:
        assert json.load(handle)["epoch"] == 2

    # A resumed run must beat 2.0 to replace it.
    resumed = BestCheckpoint(best_path, monitor="val_loss", mode="min")
    assert resumed.best == 2.0
    _fit(model, [_Logs("val_loss", [None, None, None, 2.1, 1.5]), resumed], epochs=5,
         initial_epoch=3)
    with open(str(tmp_path / "mask_rcnn_toy_best.json")) as handle:
        assert json.load(handle)["epoch"] == 5
    # A different monitor does not inherit the record.
    assert BestCheckpoint(best_path, monitor="mAP").best is None


def test_best_checkpoint_min_delta(tmp_path):
    best = BestCheckpoint(str(tmp_path / "b.h5"), monitor="loss", min_delta=0.1)
    _fit(_toy_model(), [_Logs("loss", [1.0, 0.95, 0.85]), best], epochs=3)
    assert best.best_epoch == 3  # 0.95 is not 0.1 better than 1.0; 0.85 is


def test_best_checkpoint_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        BestCheckpoint(str(tmp_path / "b.h5"), mode="lowest")
    with pytest.raises(ValueError, match="up or down"):
        BestCheckpoint(str(tmp_path / "b.h5"), monitor="val_mystery")
    with pytest.raises(ValueError, match="min_delta"):
        BestCheckpoint(str(tmp_path / "b.h5"), min_delta=-1)


# ---------------------------------------------------------------- EarlyStopping

def test_early_stopping_on_map_stops_at_expected_epoch():
    # best 0.1 -> 0.3 (improves by > 0.05), then 0.32 and 0.34 do not: wait 2 = patience.
    stop = EarlyStopping(monitor="mAP", patience=2, min_delta=0.05)
    history = _fit(_toy_model(), [_Logs("mAP", [0.1, 0.3, 0.32, 0.34, 0.9, 0.9]), stop],
                   epochs=6)
    assert len(history.history["loss"]) == 4
    assert stop.stopped_epoch == 3


def test_early_stopping_skips_epochs_without_the_metric():
    stop = EarlyStopping(monitor="val_mrcnn_mask_loss", patience=1)
    values = [1.0, None, 0.5, None, 0.7, None, 0.8]
    history = _fit(_toy_model(), [_Logs("val_mrcnn_mask_loss", values), stop], epochs=7)
    assert len(history.history["loss"]) == 5  # 0.7 at epoch index 4 does not beat 0.5
    assert stop.stopped_epoch == 4


def test_early_stopping_mode_resolution():
    assert EarlyStopping(monitor="val_mrcnn_mask_loss").monitor_op is None  # set lazily
    with pytest.raises(ValueError, match="up or down"):
        EarlyStopping(monitor="val_mystery")
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(monitor="mAP", mode="bigger")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


# ---------------------------------------------------------------- TensorBoardDetections

def _stub_detect(images):
    results = []
    for image in images:
        h, w = image.shape[:2]
        masks = np.zeros((h, w, 1), bool)
        masks[4:20, 6:24, 0] = True
        results.append({"rois": np.array([[4, 6, 20, 24]]), "masks": masks,
                        "class_ids": np.array([1]), "scores": np.array([0.9])})
    return results


def _image_summaries(folder):
    found = []
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    found.append((event.step, value))
    return found


def test_tensorboard_detections_writes_image_summaries(tmp_path):
    images = [np.full((32, 40, 3), 90, np.uint8), np.full((32, 40, 3), 160, np.uint8)]
    callback = TensorBoardDetections(str(tmp_path), images, _stub_detect, ["BG", "shape"],
                                     every=2, figsize=(2, 2))
    _fit(_toy_model(), [callback], epochs=4)
    assert callback.written_epochs == [1, 3]
    summaries = _image_summaries(str(tmp_path / "validation"))
    assert sorted(step for step, _ in summaries) == [1, 3]
    step, value = summaries[0]
    assert value.tag == "detections"
    # Image summaries hold [width, height, png, png, ...] as strings.
    strings = tf.make_ndarray(value.tensor)
    assert len(strings) == 2 + len(images)
    png = tf.io.decode_png(strings[2]).numpy()
    assert png.shape == (200, 200, 3)
    assert png.std() > 0


def test_tensorboard_detections_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="image"):
        TensorBoardDetections(str(tmp_path), [], _stub_detect, ["BG"])
    with pytest.raises(TypeError, match="callable"):
        TensorBoardDetections(str(tmp_path), [np.zeros((8, 8, 3))], None, ["BG"])
    with pytest.raises(ValueError, match="every"):
        TensorBoardDetections(str(tmp_path), [np.zeros((8, 8, 3))], _stub_detect, ["BG"],
                              every=0)
    callback = TensorBoardDetections(str(tmp_path), [np.zeros((32, 32, 3), np.uint8)] * 2,
                                     lambda images: _stub_detect(images[:1]), ["BG", "shape"])
    with pytest.raises(ValueError, match="1 results for 2 images"):
        callback.on_epoch_end(0)


def test_compose_with_matterport_checkpoint_writer(tmp_path):
    from mrcnn.engine.callbacks import MatterportCheckpoint

    template = str(tmp_path / "mask_rcnn_toy_{epoch:04d}.h5")
    callbacks = [MatterportCheckpoint(template, save_optimizer=False),
                 _Logs("mAP", [0.3, 0.6, 0.5, 0.4]),
                 BestCheckpoint(str(tmp_path / "mask_rcnn_toy_best.h5"), monitor="mAP",
                                checkpoint_template=template),
                 KeepLastCheckpoints(str(tmp_path), keep=1, name="toy"),
                 EarlyStopping(monitor="mAP", patience=2)]
    history = _fit(_toy_model(), callbacks, epochs=4)
    assert len(history.history["loss"]) == 4  # epochs 3 and 4 fail to improve: stop after 4
    assert callbacks[-1].stopped_epoch == 3
    assert sorted(os.listdir(tmp_path)) == [
        "mask_rcnn_toy_0002.h5", "mask_rcnn_toy_0004.h5", "mask_rcnn_toy_best.h5",
        "mask_rcnn_toy_best.json"]
    with h5py.File(str(tmp_path / "mask_rcnn_toy_best.h5"), "r") as f:
        assert f["mrcnn_extras"].attrs["epoch"] == 2


def test_best_checkpoint_for_model_paths(tmp_path):
    class Config:
        NAME = "Shapes"

    class Facade:  # the MaskRCNN attributes the factory reads
        log_dir = str(tmp_path)
        checkpoint_path = str(tmp_path / "mask_rcnn_shapes_{epoch:04d}.h5")
        config = Config()

    best = BestCheckpoint.for_model(Facade(), monitor="mAP")
    assert best.path == str(tmp_path / "mask_rcnn_shapes_best.h5")
    assert best.record_path == str(tmp_path / "mask_rcnn_shapes_best.json")
    assert best.checkpoint_template == Facade.checkpoint_path
    assert best.mode == "max"
