"""Run directories, checkpoint naming, resume epoch and find_last (matterport's scheme)."""

import datetime
import os

import pytest

from mrcnn.engine.runs import find_last, list_checkpoints, run_info


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")


def test_new_run_names(tmp_path):
    info = run_info(str(tmp_path), "Shapes", now=datetime.datetime(2026, 11, 23, 9, 5))
    assert info.log_dir == os.path.join(str(tmp_path), "shapes20261123T0905")
    assert info.checkpoint_path.format(epoch=7) == os.path.join(
        info.log_dir, "mask_rcnn_shapes_0007.h5")
    assert info.epoch == 0


def test_loading_a_checkpoint_continues_its_run(tmp_path):
    path = os.path.join(str(tmp_path), "shapes20250101T1200", "mask_rcnn_shapes_0003.h5")
    info = run_info(str(tmp_path / "elsewhere"), "shapes", model_path=path)
    assert info.log_dir == os.path.dirname(path)
    assert info.epoch == 3  # three epochs done; Keras' next (0-based) epoch is 3 -> file 0004
    assert info.checkpoint_path.format(epoch=info.epoch + 1).endswith("mask_rcnn_shapes_0004.h5")


def test_other_paths_start_a_new_run(tmp_path):
    info = run_info(str(tmp_path), "shapes", model_path="/weights/mask_rcnn_coco.h5",
                    now=datetime.datetime(2026, 1, 2, 3, 4))
    assert info.epoch == 0 and info.log_dir.endswith("shapes20260102T0304")


def test_find_last_picks_newest_run_and_epoch(tmp_path):
    d = str(tmp_path)
    touch(os.path.join(d, "shapes20250101T1200", "mask_rcnn_shapes_0009.h5"))
    touch(os.path.join(d, "shapes20250102T1200", "mask_rcnn_shapes_0002.h5"))
    touch(os.path.join(d, "shapes20250102T1200", "mask_rcnn_shapes_0010.h5"))
    touch(os.path.join(d, "shapes20250102T1200", "events.out.tfevents"))
    # Another config whose name starts with ours must not be taken.
    touch(os.path.join(d, "shapes_big20300101T0000", "mask_rcnn_shapes_big_0001.h5"))
    assert find_last(d, "shapes").endswith(
        os.path.join("shapes20250102T1200", "mask_rcnn_shapes_0010.h5"))


def test_find_last_skips_newest_run_without_checkpoints(tmp_path):
    d = str(tmp_path)
    touch(os.path.join(d, "shapes20250101T1200", "mask_rcnn_shapes_0004.h5"))
    os.makedirs(os.path.join(d, "shapes20250105T0800"))
    assert find_last(d, "shapes").endswith(os.path.join("shapes20250101T1200",
                                                        "mask_rcnn_shapes_0004.h5"))


def test_find_last_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_last(str(tmp_path / "missing"), "shapes")
    with pytest.raises(FileNotFoundError, match="run directory for config 'shapes'"):
        find_last(str(tmp_path), "shapes")
    os.makedirs(tmp_path / "shapes20250101T1200")
    with pytest.raises(FileNotFoundError, match="Could not find weight files"):
        find_last(str(tmp_path), "shapes")


def test_list_checkpoints_orders_by_epoch(tmp_path):
    d = str(tmp_path)
    for e in (10, 2, 1):
        touch(os.path.join(d, f"mask_rcnn_x_{e:04d}.h5"))
    assert [os.path.basename(p) for p in list_checkpoints(d, "x")] == [
        "mask_rcnn_x_0001.h5", "mask_rcnn_x_0002.h5", "mask_rcnn_x_0010.h5"]


def test_resolve_weights_file(tmp_path, monkeypatch):
    from mrcnn.engine.runs import resolve_weights_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_weights_file("some/file.h5", str(tmp_path)) == "some/file.h5"
    with pytest.raises(FileNotFoundError, match="mask_rcnn_coco.h5.*does not download"):
        resolve_weights_file("coco", str(tmp_path / "logs"))
    with pytest.raises(FileNotFoundError, match="MRCNN_IMAGENET_WEIGHTS"):
        resolve_weights_file("imagenet", str(tmp_path))
    touch(str(tmp_path / "logs" / "mask_rcnn_coco.h5"))
    assert resolve_weights_file("coco", str(tmp_path / "logs")).endswith(
        os.path.join("logs", "mask_rcnn_coco.h5"))
    other = tmp_path / "elsewhere.h5"
    touch(str(other))
    monkeypatch.setenv("MRCNN_COCO_WEIGHTS", str(other))
    assert resolve_weights_file("coco", str(tmp_path / "logs")) == str(other)
