"""Tests of `mrcnn train`'s run control: mrcnn/tools/commands/train.py, mrcnn/tools/training.py,
the config files of mrcnn/tools/common.py, the checkpoint metadata of mrcnn/tools/models.py,
the named run folders of mrcnn/engine/runs.py, mrcnn/engine/callbacks/epoch_log.py and
mrcnn/vis/curves.py.

The slow tests train the shapes COCO set of tests/test_cli.py through the command line: one
run of 1 epoch (1 step) with every flag, resumed to epoch 2 with nothing but `--resume`.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import h5py
import keras
import numpy as np
import pytest

from mrcnn.checkpoint.h5_format import read_h5_extras, read_optimizer_arrays, save_weights_h5
from mrcnn.config import Config
from mrcnn.engine import runs
from mrcnn.engine.callbacks import EpochLog, WarmupLRSchedule, lr_at, read_epoch_log
from mrcnn.engine.train_loop import checkpoint_metadata, training_callbacks
from mrcnn.tools import cli, common, models, training
from mrcnn.tools.parser import build_parser
from mrcnn.vis.curves import history_records, plot_training_curves
from tests.test_cli import CONFIG, TINY, write_coco

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def tiny_keras_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


# ---------------------------------------------------------------------------- config files
def test_json_config_file_makes_a_config_subclass(tmp_path):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"NAME": "mine", "NUM_CLASSES": 3, "IMAGE_MAX_DIM": 256,
                                "RPN_ANCHOR_SCALES": [8, 16, 32, 64, 128],
                                "MEAN_PIXEL": [1.0, 2.0, 3.0], "BATCH_SIZE": 99}))
    cls = common.load_config_class(str(path))
    assert issubclass(cls, Config) and cls is not Config
    config = common.make_config(cls, {"IMAGE_MIN_DIM": 128})
    assert (config.NAME, config.NUM_CLASSES, config.IMAGE_MAX_DIM) == ("mine", 3, 256)
    assert config.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)  # lists become tuples
    assert config.MEAN_PIXEL.tolist() == [1.0, 2.0, 3.0]
    assert config.BATCH_SIZE == config.IMAGES_PER_GPU  # computed, not taken from the file
    assert config.IMAGE_MIN_DIM == 128  # --set still wins


def test_yaml_config_file_with_a_base_class(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "my.yaml"
    path.write_text(f"_BASE_: '{CONFIG}'\nIMAGE_MAX_DIM: 128\nIMAGE_MIN_DIM: 128\n"
                    "RPN_ANCHOR_RATIOS: [1]\nRPN_ANCHOR_SCALES: [8, 16, 32, 64, 128]\n")
    cls = common.load_config_class(str(path))
    base = common.load_config_class(CONFIG)
    assert issubclass(cls, base)
    config = cls()
    assert config.NAME == "shapes" and config.IMAGE_MAX_DIM == 128
    assert config.RPN_ANCHOR_RATIOS == [1]  # the default's type: a list stays a list
    assert config.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)  # a tuple default: a tuple


def test_a_run_config_json_is_a_config_file(tmp_path):
    config = common.make_config(common.load_config_class(CONFIG),
                                common.parse_settings(TINY + ["NUM_CLASSES=4"]))
    common.write_json(str(tmp_path / "config.json"), config.to_dict())
    again = common.load_config_class(str(tmp_path / "config.json"))()
    assert again.to_dict() == config.to_dict()


def test_config_file_errors_are_usage_errors(tmp_path, monkeypatch):
    bad_key = tmp_path / "bad.json"
    bad_key.write_text(json.dumps({"NUM_CLASSES": 3, "NOT_A_SETTING": 1, "lower": 2}))
    with pytest.raises(common.UsageError, match="NOT_A_SETTING, lower"):
        common.load_config_class(str(bad_key))
    not_json = tmp_path / "broken.json"
    not_json.write_text("{NUM_CLASSES: 3")
    with pytest.raises(common.UsageError, match="not valid JSON"):
        common.load_config_class(str(not_json))
    a_list = tmp_path / "list.json"
    a_list.write_text("[1, 2]")
    with pytest.raises(common.UsageError, match="expected a mapping"):
        common.load_config_class(str(a_list))
    with pytest.raises(common.UsageError, match="not found"):
        common.load_config_class(str(tmp_path / "missing.json"))
    yaml_file = tmp_path / "my.yml"
    yaml_file.write_text("NUM_CLASSES: 3\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    with pytest.raises(common.UsageError, match="need PyYAML .*or write the settings as JSON"):
        common.load_config_class(str(yaml_file))


# ---------------------------------------------------------------------------- options
def test_train_options_default_to_not_given():
    args = build_parser().parse_args(["train", "--dataset", "d"])
    for key in training.RESUMABLE + ("resume", "run_name", "output_dir"):
        assert getattr(args, key) is None, key
    args = build_parser().parse_args(["train", "--resume", "--lr-steps", "3", "5"])
    assert args.resume == "last" and args.lr_steps == [3, 5]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--warmup-steps", "2", "--warmup-epochs", "1"])


@pytest.mark.parametrize("argv, message", [
    (["--run-name", "a", "--output-dir", "b"], "not both"),
    (["--run-name", "../up"], "plain folder name"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--keep", "0"], "--keep must be >= 1"),
    (["--lr-schedule", "step"], "needs --lr-steps"),
    (["--lr-steps", "2"], "needs --lr-schedule step"),
    (["--lr-schedule", "step", "--lr-steps", "2", "--lr-gamma", "0"], "--lr-gamma must be > 0"),
    (["--eval-period", "1"], "need a validation set"),
    (["--best", "mAP"], "--best mAP needs --eval-period"),
    (["--resume", "--weights", "coco"], "drop --weights"),
])
def test_bad_train_options_are_one_line_usage_errors(capsys, tmp_path, argv, message):
    from tests.test_cli import write_via

    write_via(tmp_path / "via" / "train", 1, seed=3)
    status, out, err = run(capsys, "train", "--dataset", tmp_path / "via", "--config", CONFIG,
                           "--set", *TINY, "--logs", tmp_path / "logs", *argv)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_options_of_a_checkpoint_training_record():
    schedule = WarmupLRSchedule(base_lr=0.02, warmup_steps=3, decay="step", milestones=[4],
                                gamma=0.5, unit="epoch", steps_per_epoch=2)
    record = {"layers": "all", "learning_rate": 0.02, "epochs": 6,
              "lr_schedule": schedule.get_config()}
    assert training._options_of_training(record) == {
        "layers": "all", "lr": 0.02, "epochs": 6, "lr_schedule": "step", "lr_steps": [4],
        "lr_gamma": 0.5, "warmup_steps": 3, "warmup_epochs": None}
    assert WarmupLRSchedule(**schedule.get_config()).get_config() == schedule.get_config()
    assert training._options_of_training(None) == {}


# ---------------------------------------------------------------------------- run folders
def test_a_checkpoint_in_a_named_run_folder_continues_that_run(tmp_path):
    folder = tmp_path / "my-run"
    folder.mkdir()
    checkpoint = str(folder / "mask_rcnn_tiny_0003.h5")
    # Without the run's config.json the folder is not a run: a new stamped run starts.
    info = runs.run_info(str(tmp_path / "logs"), "tiny", checkpoint)
    assert info.epoch == 0 and os.path.dirname(info.log_dir) == str(tmp_path / "logs")
    (folder / runs.RUN_CONFIG_FILE).write_text("{}")
    info = runs.run_info(str(tmp_path / "logs"), "tiny", checkpoint)
    assert (info.log_dir, info.epoch) == (str(folder), 3)
    assert info.checkpoint_path == str(folder / "mask_rcnn_tiny_{epoch:04d}.h5")
    for epoch in (2, 10):
        (folder / f"mask_rcnn_tiny_{epoch:04d}.h5").write_bytes(b"")
    assert runs.last_checkpoint_in(str(folder)).endswith("mask_rcnn_tiny_0010.h5")
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        runs.last_checkpoint_in(str(tmp_path))


def test_named_runs_do_not_share_a_folder(tmp_path):
    args = build_parser().parse_args(["train", "--run-name", "exp1", "--logs",
                                      str(tmp_path)])
    assert training.run_folder(args) == str(tmp_path / "exp1")
    training.check_new_run_folder(args, None)  # nothing there yet
    (tmp_path / "exp1").mkdir()
    (tmp_path / "exp1" / runs.RUN_CONFIG_FILE).write_text("{}")
    with pytest.raises(common.UsageError, match="already holds a run.*--resume"):
        training.check_new_run_folder(args, None)
    # Weights from that run continue it (matterport's rule), so no error.
    training.check_new_run_folder(args, str(tmp_path / "exp1" / "mask_rcnn_x_0001.h5"))


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_metadata_round_trip_and_older_files(tmp_path):
    model = tiny_keras_model()
    config = Config.from_dict({"NAME": "x", "NUM_CLASSES": 3, "DETECTION_MIN_CONFIDENCE": 0.3})

    class Data:
        class_names = ["BG", "cat", "dog"]

    schedule = WarmupLRSchedule(decay="cosine", total=4, steps_per_epoch=2)
    meta = checkpoint_metadata(config, Data(), layers="heads", learning_rate=0.01, epochs=4,
                               callbacks=[schedule])
    save_weights_h5(model, tmp_path / "new.h5", epoch=2, config=config.to_dict(),
                    metadata=meta)
    stored = models.read_checkpoint_metadata(str(tmp_path / "new.h5"))
    assert stored["class_names"] == ["BG", "cat", "dog"] and stored["epoch"] == 2
    assert stored["detection"] == {"DETECTION_MIN_CONFIDENCE": 0.3,
                                   "DETECTION_NMS_THRESHOLD": 0.3,
                                   "DETECTION_MAX_INSTANCES": 100}
    assert stored["training"] == {"layers": "heads", "learning_rate": 0.01, "epochs": 4,
                                  "lr_schedule": schedule.get_config()}
    assert models.checkpoint_class_names(str(tmp_path / "new.h5")) == ["cat", "dog"]
    assert models.checkpoint_detection_settings(
        str(tmp_path / "new.h5"), {"DETECTION_MAX_INSTANCES"}) == {
        "DETECTION_MIN_CONFIDENCE": 0.3, "DETECTION_NMS_THRESHOLD": 0.3}
    # An earlier checkpoint of this project: the detection settings come from its config.
    save_weights_h5(model, tmp_path / "old.h5", config=config.to_dict())
    old = models.read_checkpoint_metadata(str(tmp_path / "old.h5"))
    assert old["class_names"] is None and old["training"] is None
    assert old["detection"]["DETECTION_MIN_CONFIDENCE"] == 0.3
    # matterport's files (no extras), missing files and None say nothing.
    save_weights_h5(model, tmp_path / "plain.h5")
    empty = {"class_names": None, "detection": {}, "training": None, "epoch": None,
             "config": None}
    for path in (str(tmp_path / "plain.h5"), str(tmp_path / "none.h5"), None):
        assert models.read_checkpoint_metadata(path) == empty
    assert models.checkpoint_class_names(None) is None
    with pytest.raises(TypeError, match="metadata must be a dict"):
        save_weights_h5(model, tmp_path / "bad.h5", metadata=["x"])


def test_a_custom_tensorboard_replaces_the_default_one(tmp_path):
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path), update_freq=5)
    log = EpochLog(str(tmp_path))
    _, callbacks = training_callbacks(str(tmp_path), str(tmp_path / "c_{epoch:04d}.h5"), {},
                                      [board, log], metadata={"class_names": ["BG", "a"]})
    boards = [cb for cb in callbacks if isinstance(cb, keras.callbacks.TensorBoard)]
    assert boards == [board] and callbacks.index(board) == 1
    assert callbacks[2].metadata == {"class_names": ["BG", "a"]}  # the checkpoint writer
    assert callbacks[-1] is log
    _, default = training_callbacks(str(tmp_path), str(tmp_path / "c_{epoch:04d}.h5"), {}, [])
    assert isinstance(default[1], keras.callbacks.TensorBoard) and default[1] is not board


# ---------------------------------------------------------------------------- epoch log, curves
def test_epoch_log_covers_the_run_and_redone_epochs_replace_old_ones(tmp_path):
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model = tiny_keras_model()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[EpochLog(str(tmp_path))])
    records = read_epoch_log(tmp_path / "metrics.json")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(r["lr"] == pytest.approx(0.1) and r["loss"] > 0 for r in records)
    # Resumed from the checkpoint of epoch 1: epochs 2 and 3 are redone, 4 is new.
    model.fit(x, y, initial_epoch=1, epochs=4, verbose=0,
              callbacks=[EpochLog(str(tmp_path)),
                         WarmupLRSchedule(base_lr=0.05, steps_per_epoch=1)])
    again = read_epoch_log(tmp_path / "metrics.json")
    assert [r["epoch"] for r in again] == [1, 2, 3, 4]
    assert again[0] == records[0]
    assert [r["lr"] for r in again[1:]] == pytest.approx([0.05] * 3)
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="expected"):
        read_epoch_log(tmp_path / "bad.json")


def test_training_curves_png_without_pyplot(tmp_path):
    records = history_records({"loss": [2.0, 1.0, 0.5], "val_loss": [2.5, 1.5, 1.0],
                               "mrcnn_mask_loss": [0.7, 0.5, 0.4], "lr": [0.01, 0.01, 0.001]},
                              first_epoch=3)
    assert [r["epoch"] for r in records] == [3, 4, 5]
    records[1]["mAP"] = 0.25  # measured every other epoch
    path = tmp_path / "sub" / "curves.png"
    panels = plot_training_curves(records, str(path), title="run")
    assert panels == ["losses", "learning rate", "metrics"]
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.shape[1] > 2 * image.shape[0] and image.std() > 0.05
    assert plot_training_curves(records[:1], str(tmp_path / "one.png")) == [
        "losses", "learning rate"]
    with pytest.raises(ValueError, match="at least one"):
        plot_training_curves([], str(tmp_path / "none.png"))
    with pytest.raises(ValueError, match="integer 'epoch'"):
        plot_training_curves([{"loss": 1.0}], str(tmp_path / "none.png"))


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_train")
    train_json, train_images = write_coco(root / "train", 4, seed=1)
    val_json, val_images = write_coco(root / "val", 2, seed=2)
    return ["--train", train_json, "--train-images", train_images, "--val", val_json,
            "--val-images", val_images]


FLAGS = ["--lr-schedule", "cosine", "--warmup-steps", "1", "--eval-period", "1",
         "--eval-limit", "1", "--best", "mAP", "--keep", "1", "--log-every", "1",
         "--tb-images", "1"]


@pytest.fixture(scope="module")
def first_run(data, tmp_path_factory):
    """Epoch 1 of a 2-epoch run of all layers from random weights, with every flag."""
    logs = tmp_path_factory.mktemp("logs")
    status = cli.main(["train", *data, "--config", CONFIG, "--set", *TINY, "STEPS_PER_EPOCH=1",
                       "--weights", "none", "--epochs", "1", "--logs", str(logs), "--workers",
                       "1", "--run-name", "exp", "--lr", "0.004", *FLAGS])
    assert status == 0
    folder = logs / "exp"
    return {"logs": logs, "folder": folder,
            "extras": read_h5_extras(folder / "mask_rcnn_shapes_0001.h5"),
            "files": sorted(os.listdir(folder))}


@pytest.mark.slow
def test_a_named_run_writes_config_checkpoints_curves_and_best(first_run):
    folder = first_run["folder"]
    assert {"config.json", "run.json", "metrics.json", "training_curves.png",
            "mask_rcnn_shapes_0001.h5", "mask_rcnn_shapes_best.h5",
            "mask_rcnn_shapes_best.json"} <= set(first_run["files"])
    config = json.loads((folder / "config.json").read_text())
    assert config["NAME"] == "shapes" and config["NUM_CLASSES"] == 4
    assert config["STEPS_PER_EPOCH"] == 1 and config["TOP_DOWN_PYRAMID_SIZE"] == 32
    [record] = read_epoch_log(folder / "metrics.json")
    assert record["epoch"] == 1 and 0.0 <= record["mAP"] <= 1.0 and record["loss"] > 0
    # Cosine over 2 epochs of 1 step after a 1-step warmup: step 0 runs at 0.004 * 0.001.
    assert record["lr"] == pytest.approx(0.004 * 0.001)
    best = json.loads((folder / "mask_rcnn_shapes_best.json").read_text())
    assert best["monitor"] == "mAP" and best["epoch"] == 1
    assert (folder / "training_curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_every_checkpoint_stores_class_names_detection_settings_and_training_state(first_run):
    meta = first_run["extras"]["metadata"]
    assert meta["class_names"] == ["BG", "square", "circle", "triangle"]
    assert meta["detection"]["DETECTION_MIN_CONFIDENCE"] == 0.5  # DemoConfig's
    assert meta["detection"]["DETECTION_MAX_INSTANCES"] == 10
    training_state = meta["training"]
    assert (training_state["layers"], training_state["learning_rate"],
            training_state["epochs"]) == ("all", 0.004, 1)
    assert training_state["lr_schedule"]["decay"] == "cosine"
    assert training_state["lr_schedule"]["warmup_steps"] == 1


@pytest.mark.slow
def test_tensorboard_scalars_per_step_and_detection_images(first_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = first_run["folder"]
    images = EventAccumulator(str(folder / "validation"), size_guidance={"images": 0})
    images.Reload()
    assert any("detections" in tag for tag in images.Tags()["tensors"] + images.Tags()["images"])
    steps = EventAccumulator(str(folder / "train"))
    steps.Reload()
    assert any(tag.startswith("batch_") for tag in steps.Tags()["tensors"])


@pytest.mark.slow
def test_config_json_of_the_run_drives_another_command(capsys, first_run):
    status, out, err = run(capsys, "inspect-weights",
                           first_run["folder"] / "mask_rcnn_shapes_0001.h5",
                           "--config", first_run["folder"] / "config.json")
    assert status == 0, err
    assert "Diff against the model of" in out


@pytest.mark.slow
def test_weights_last_warns_that_the_layers_switch_to_heads(caplog, first_run):
    from mrcnn.tools.commands import train as train_command

    args = build_parser().parse_args(["train"])
    path = str(first_run["folder"] / "mask_rcnn_shapes_0001.h5")
    with caplog.at_level(logging.WARNING, logger="mrcnn.tools.commands.train"):
        train_command._warn_on_layer_switch(path, args, "heads")
    assert "trained layers 'all'" in caplog.text and "--resume" in caplog.text


@pytest.mark.slow
def test_resume_continues_the_run_as_it_was(capsys, caplog, first_run):
    folder = first_run["folder"]
    caplog.set_level(logging.INFO)
    # Nothing but --resume, the folder and the new target epoch: data, config, layers, lr,
    # schedule and flags come from the run.
    status, out, err = run(capsys, "train", "--resume", folder, "--epochs", "2", "--logs",
                           first_run["logs"], "--workers", "1")
    assert status == 0, err
    assert "Training all from epoch 1 to 2, lr 0.004" in out
    assert "Restored optimizer state" in caplog.text and "not restored" not in caplog.text
    files = set(os.listdir(folder))
    # --keep 1: epoch 1 is gone unless the best record still points at it.
    assert "mask_rcnn_shapes_0002.h5" in files
    best = json.loads((folder / "mask_rcnn_shapes_best.json").read_text())
    assert ("mask_rcnn_shapes_0001.h5" in files) == (best["epoch"] == 1)
    records = read_epoch_log(folder / "metrics.json")
    assert [r["epoch"] for r in records] == [1, 2]
    # The cosine schedule went on at global step 1 of 2 (the schedule of --epochs 2 now).
    assert records[1]["lr"] == pytest.approx(lr_at(1, 0.004, warmup_steps=1, decay="cosine",
                                                   total_steps=2))
    assert "mAP" in records[1]
    optimizer = dict(read_optimizer_arrays(folder / "mask_rcnn_shapes_0002.h5"))
    iterations = [v for k, v in optimizer.items() if k.endswith("/iteration")]
    assert iterations and int(iterations[0]) == 2  # one step per epoch, counted over the run
    extras = read_h5_extras(folder / "mask_rcnn_shapes_0002.h5")
    assert extras["epoch"] == 2 and extras["metadata"]["training"]["layers"] == "all"
    with h5py.File(folder / "mask_rcnn_shapes_0002.h5", "r") as handle:
        assert "res2a_branch2a" in handle  # all layers, in matterport's layout
    # Resuming a finished run trains nothing.
    status, out, err = run(capsys, "train", "--resume", "--run-name", "exp", "--logs",
                           first_run["logs"])
    assert status == 0 and "Nothing to train: the run is at epoch 2" in out
