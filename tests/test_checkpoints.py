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


def test_checkpoint_file_pattern_and_best_path(tmp_path):
    from mrcnn.engine.runs import best_checkpoint_path, checkpoint_file_pattern

    pattern = checkpoint_file_pattern("Shapes")
    assert pattern.match("mask_rcnn_shapes_0012.h5").group("epoch") == "0012"
    for other in ("mask_rcnn_shapes_best.h5", "mask_rcnn_shapes_12.h5",
                  "mask_rcnn_coco_0001.h5", "mask_rcnn_shapes_0001.h5.tmp",
                  "xmask_rcnn_shapes_0001.h5"):
        assert not pattern.match(other), other
    # Without a name any config's epoch files match, and nothing else.
    anyname = checkpoint_file_pattern(None)
    assert anyname.match("mask_rcnn_coco-2_0003.h5").group("epoch") == "0003"
    assert not anyname.match("mask_rcnn_coco_best.h5")
    # The pattern, the template and list_checkpoints agree on one naming.
    template = run_info(str(tmp_path), "Shapes").checkpoint_path
    assert pattern.match(os.path.basename(template.format(epoch=7)))
    assert best_checkpoint_path(str(tmp_path), "Shapes") == os.path.join(
        str(tmp_path), "mask_rcnn_shapes_best.h5")


def test_log_dir_of_reads_paths_and_objects(tmp_path):
    from mrcnn.engine.runs import log_dir_of

    class Facade:
        log_dir = str(tmp_path / "run")

    assert log_dir_of(str(tmp_path)) == str(tmp_path)
    assert log_dir_of(tmp_path) == str(tmp_path)
    assert log_dir_of(Facade()) == str(tmp_path / "run")


def test_weights_file_names_the_file_or_refuses(tmp_path):
    from mrcnn.engine.weights import weights_file

    with pytest.raises(ValueError, match="'none'"):
        weights_file("none", str(tmp_path), "shapes")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        weights_file(str(tmp_path / "missing.h5"), str(tmp_path), "shapes")
    with pytest.raises(FileNotFoundError):
        weights_file("last", str(tmp_path), "shapes")  # no run yet
    ckpt = os.path.join(str(tmp_path), "shapes20250101T1200", "mask_rcnn_shapes_0002.h5")
    touch(ckpt)
    assert weights_file("LAST", str(tmp_path), "shapes") == ckpt
    assert weights_file(ckpt, str(tmp_path), "other") == ckpt


def test_resolve_weights_and_exclude_for(tmp_path, monkeypatch):
    from mrcnn.engine.runs import HEAD_LAYERS, exclude_for, resolve_weights

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
    assert resolve_weights("None", str(tmp_path), "shapes") is None
    touch(str(tmp_path / "mask_rcnn_coco.h5"))
    assert resolve_weights("COCO", str(tmp_path / "logs"), "shapes") == "mask_rcnn_coco.h5"
    # COCO's heads are left out only when the class count differs from COCO's 81.
    assert exclude_for("coco", None, 4) == list(HEAD_LAYERS)
    assert exclude_for("coco", None, 81) is None
    assert exclude_for("some.h5", None, 4) is None
    assert exclude_for("coco", "heads", 81) == list(HEAD_LAYERS)
    assert exclude_for("last", "mrcnn_mask, rpn_.*", 4) == ["mrcnn_mask", "rpn_.*"]
    assert exclude_for("last", ["a"], 4) == ["a"]
