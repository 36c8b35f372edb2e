"""Tests of the `mrcnn` command: mrcnn/tools/cli.py (entry point), parser.py, common.py,
models.py, commands/ (one module per subcommand) and mrcnn/__main__.py.

A small COCO-format dataset is written to disk from the shapes generator (PNG images, polygons
from the masks' contours for some objects and compressed RLE for the others), plus one object
that is deliberately too thin for the anchors. The slow tests train on it through the command
line, then evaluate, detect and inspect the checkpoint through the command line.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import subprocess
import sys
import types

import cv2
import h5py
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from skimage.measure import find_contours

from mrcnn.engine.runs import HEAD_LAYERS
from mrcnn.tools import cli, common, models
from samples.shapes.shapes import ShapesDataset

# pycocotools 2.x calls np.array(copy=False) on numpy 2: its own deprecation, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SIZE = 128
CONFIG = "samples.shapes.train:DemoConfig"
TINY = ["IMAGE_MAX_DIM=128", "IMAGE_MIN_DIM=128", "STEPS_PER_EPOCH=2", "VALIDATION_STEPS=1",
        "IMAGES_PER_GPU=2", "TOP_DOWN_PYRAMID_SIZE=32", "FPN_CLASSIF_FC_LAYERS_SIZE=64",
        "POST_NMS_ROIS_TRAINING=64", "POST_NMS_ROIS_INFERENCE=32", "TRAIN_ROIS_PER_IMAGE=16",
        "BACKBONE='resnet50'"]
# The thin object: rows 100..102, columns 10..99 (3 x 90 px) of the first training image.
THIN = (100, 10, 103, 100)


def polygons_of(mask):
    """COCO polygons [x1, y1, x2, y2, ...] of a mask's outer contours (pixel-edge coords)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    polygons = []
    for contour in find_contours(padded, 0.5):
        contour = contour - 1  # undo the padding
        if len(contour) >= 3:
            polygons.append([float(v) for yx in contour for v in (yx[1] + 0.5, yx[0] + 0.5)])
    return polygons


def rle_of(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def write_coco(folder, count, seed, thin=False):
    """Shapes images as PNGs in folder/images and folder/instances.json; returns paths."""
    shapes = ShapesDataset()
    shapes.load_shapes(count, SIZE, SIZE, seed=seed)
    shapes.prepare()
    image_dir = folder / "images"
    image_dir.mkdir(parents=True)
    data = {"images": [], "annotations": [],
            "categories": [{"id": i, "name": n} for i, n in enumerate(shapes.class_names[1:], 1)]}
    for image_id in shapes.image_ids:
        image = shapes.load_image(image_id)
        masks, class_ids = shapes.load_mask(image_id)
        if thin and image_id == 0:
            y1, x1, y2, x2 = THIN
            image[y1:y2, x1:x2] = (255, 255, 255)
            masks[y1:y2, x1:x2] = False
            extra = np.zeros([SIZE, SIZE, 1], dtype=bool)
            extra[y1:y2, x1:x2] = True
            masks, class_ids = np.concatenate([masks, extra], axis=2), np.append(class_ids, 1)
        name = f"shapes_{image_id:03d}.png"
        cv2.imwrite(str(image_dir / name), image[..., ::-1])
        data["images"].append({"id": int(image_id) + 1, "file_name": name, "height": SIZE,
                               "width": SIZE})
        for k in range(masks.shape[2]):
            mask = masks[..., k]
            if not mask.any():
                continue
            rle = rle_of(mask)
            use_rle = (len(data["annotations"]) % 2 == 1) and not (thin and image_id == 0)
            data["annotations"].append({
                "id": len(data["annotations"]) + 1, "image_id": int(image_id) + 1,
                "category_id": int(class_ids[k]), "iscrowd": 0,
                "segmentation": rle if use_rle else polygons_of(mask),
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)]})
    path = folder / "instances.json"
    path.write_text(json.dumps(data))
    return str(path), str(image_dir)


def write_via(folder, count, seed):
    """Shapes images and a via_region_data.json (polygons, class in region attribute)."""
    shapes = ShapesDataset()
    shapes.load_shapes(count, SIZE, SIZE, seed=seed)
    shapes.prepare()
    folder.mkdir(parents=True)
    entries = {}
    for image_id in shapes.image_ids:
        masks, class_ids = shapes.load_mask(image_id)
        name = f"via_{image_id:03d}.png"
        cv2.imwrite(str(folder / name), shapes.load_image(image_id)[..., ::-1])
        regions = []
        for k in range(masks.shape[2]):
            for polygon in polygons_of(masks[..., k])[:1]:
                regions.append({"shape_attributes": {"name": "polygon",
                                                     "all_points_x": polygon[0::2],
                                                     "all_points_y": polygon[1::2]},
                                 "region_attributes": {
                                     "shape": shapes.class_names[class_ids[k]]}})
        entries[name] = {"filename": name, "size": 0, "regions": regions}
    (folder / "via_region_data.json").write_text(json.dumps(entries))


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    train_json, train_images = write_coco(root / "train", 6, seed=1, thin=True)
    val_json, val_images = write_coco(root / "val", 3, seed=2)
    return {"args": ["--train", train_json, "--train-images", train_images,
                     "--val", val_json, "--val-images", val_images],
            "train": train_json, "train_images": train_images, "val": val_json,
            "val_images": val_images, "root": root}


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# ---------------------------------------------------------------------------- the data
def test_written_dataset_has_polygons_rle_and_the_thin_object(coco):
    from mrcnn.data.formats.coco import CocoDataset

    data = json.loads(open(coco["train"]).read())
    kinds = {type(a["segmentation"]).__name__ for a in data["annotations"]}
    assert kinds == {"list", "dict"}
    dataset = CocoDataset()
    dataset.load_coco(coco["train"], coco["train_images"])
    dataset.prepare()
    masks, class_ids = dataset.load_mask(0)
    thin = masks[..., -1]
    ys, xs = np.nonzero(thin)
    # The polygon of a 3 x 90 rectangle comes back within a pixel of it.
    assert abs(ys.min() - THIN[0]) <= 1 and abs(ys.max() + 1 - THIN[2]) <= 1
    assert abs(xs.min() - THIN[1]) <= 1 and abs(xs.max() + 1 - THIN[3]) <= 1
    assert class_ids[-1] == 1


# ---------------------------------------------------------------------------- --set, config
def test_parse_settings_literals_strings_and_errors():
    got = common.parse_settings(["IMAGE_MAX_DIM=128", "RPN_ANCHOR_SCALES=(8, 16)", "NAME=balloon",
                              "BACKBONE='resnet50'", "USE_MINI_MASK=False", "LEARNING_RATE=1e-3",
                              "MEAN_PIXEL=[1, 2, 3]", "IMAGE_MIN_DIM=64", "IMAGE_MIN_DIM=96"])
    assert got == {"IMAGE_MAX_DIM": 128, "RPN_ANCHOR_SCALES": (8, 16), "NAME": "balloon",
                   "BACKBONE": "resnet50", "USE_MINI_MASK": False, "LEARNING_RATE": 0.001,
                   "MEAN_PIXEL": [1, 2, 3], "IMAGE_MIN_DIM": 96}
    assert common.parse_value("a b") == "a b" and common.parse_value("None") is None
    for bad in ["IMAGE_MAX_DIM", "image_max_dim=3", "=3", "1ABC=2"]:
        with pytest.raises(common.UsageError, match="NAME=VALUE"):
            common.parse_settings([bad])


def test_config_class_from_module_file_and_errors(tmp_path):
    from samples.shapes.train import DemoConfig

    assert common.load_config_class(CONFIG) is DemoConfig
    (tmp_path / "myconf.py").write_text(
        "from mrcnn.config import Config\nclass Mine(Config):\n    NAME = 'mine'\n"
        "NOT_A_CLASS = 3\n")
    cls = common.load_config_class(str(tmp_path / "myconf.py") + ":Mine")
    assert cls.NAME == "mine"
    config = common.make_config(cls, {"NUM_CLASSES": 3}, {"NUM_CLASSES": 2,
                                                          "IMAGE_MAX_DIM": 256})
    assert (config.NUM_CLASSES, config.IMAGE_MAX_DIM, config.NAME) == (3, 256, "mine")
    base = common.load_config_class("mrcnn.config:Config")
    assert common.make_config(base, {}).NAME == "mrcnn"
    for spec, match in [("nocolon", "must look like"), ("no.such.module:X", "cannot import"),
                        ("mrcnn.config:Nope", "no Config subclass"),
                        (str(tmp_path / "myconf.py") + ":NOT_A_CLASS", "no Config subclass"),
                        (str(tmp_path / "missing.py") + ":X", "not found")]:
        with pytest.raises(common.UsageError, match=match):
            common.load_config_class(spec)
    with pytest.raises(common.UsageError, match="Unknown config setting"):
        common.make_config(cls, {"NOT_A_SETTING": 1})
    with pytest.raises(common.UsageError, match="IMAGE_MAX_DIM"):
        common.make_config(cls, {"IMAGE_MAX_DIM": 100})  # not a multiple of 64


# ---------------------------------------------------------------------------- weights
class FakeModel:
    """Records `load_weights` calls; a MaskRCNN stand-in of a given class count."""

    def __init__(self, num_classes):
        self.config = types.SimpleNamespace(NUM_CLASSES=num_classes)
        self.calls = []

    def load_weights(self, filepath, by_name=False, exclude=None):
        self.calls.append((filepath, by_name, exclude))


def test_weights_follow_the_engine_rules(tmp_path, monkeypatch):
    """--weights/--exclude go through mrcnn.engine.runs.resolve_weights and exclude_for."""
    from mrcnn.config import Config
    from samples.shapes.train import DemoConfig

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
    logs = tmp_path / "logs"
    with pytest.raises(FileNotFoundError, match="coco weights not found"):
        models.resolve_checkpoint("coco", str(logs), DemoConfig, {})
    coco_file = tmp_path / "elsewhere.h5"
    coco_file.write_bytes(b"")
    monkeypatch.setenv("MRCNN_COCO_WEIGHTS", str(coco_file))
    path = models.resolve_checkpoint("COCO", str(logs), DemoConfig, {})
    assert path == str(coco_file)
    # COCO weights into 4 classes: the class-specific heads are not loaded.
    model = FakeModel(4)
    models.load_weights(model, "coco", path)
    assert model.calls == [(path, True, list(HEAD_LAYERS))]
    model = FakeModel(81)
    models.load_weights(model, "coco", path)
    assert model.calls == [(path, True, None)]
    model = FakeModel(81)
    models.load_weights(model, "coco", path, "heads")
    models.load_weights(model, "x.h5", path, "conv1, fpn_.*")
    assert [c[2] for c in model.calls] == [list(HEAD_LAYERS), ["conv1", "fpn_.*"]]
    # none: nothing resolved, nothing loaded.
    assert models.resolve_checkpoint("none", str(logs), DemoConfig, {}) is None
    model = FakeModel(4)
    models.load_weights(model, "none", None)
    assert model.calls == []
    # last: the newest run of the config's NAME (--set NAME, the class's, or "mrcnn").
    for run, epoch in [("mine20240101T0000", 5), ("mine20240102T0304", 2),
                       ("mrcnn20240101T0000", 1)]:
        (logs / run).mkdir(parents=True)
        (logs / run / f"mask_rcnn_{run[:-13]}_{epoch:04d}.h5").write_bytes(b"")
    assert models.resolve_checkpoint("last", str(logs), DemoConfig, {"NAME": "mine"}) == str(
        logs / "mine20240102T0304" / "mask_rcnn_mine_0002.h5")
    assert models.resolve_checkpoint("last", str(logs), Config, {}) == str(
        logs / "mrcnn20240101T0000" / "mask_rcnn_mrcnn_0001.h5")
    with pytest.raises(FileNotFoundError, match="run directory for config 'shapes'"):
        models.resolve_checkpoint("last", str(logs), DemoConfig, {})
    with pytest.raises(FileNotFoundError, match="not found"):
        models.resolve_checkpoint(str(tmp_path / "missing.h5"), str(logs), DemoConfig, {})


def test_missing_coco_weights_fail_before_the_model_is_built(capsys, coco, tmp_path,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
    built = []
    monkeypatch.setattr(models, "build_model", lambda *a: built.append(a))
    status, _, err = run(capsys, "train", *coco["args"], "--config", CONFIG, "--weights",
                         "coco", "--logs", tmp_path / "logs")
    assert status == 2 and "coco weights not found" in err and "MRCNN_COCO_WEIGHTS" in err
    assert built == []


# ---------------------------------------------------------------------------- result files
def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "out.json"
    common.write_json(str(path), {"n": np.int64(3), "where": tmp_path})
    assert json.loads(path.read_text()) == {"n": "3", "where": str(tmp_path)}

    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot serialize")

    # json.dump streams into the file: a direct write would leave it truncated here.
    path.write_text('{"old": 1}')
    with pytest.raises(RuntimeError, match="cannot serialize"):
        common.write_json(str(path), {"a": list(range(5000)), "b": Unprintable()})
    assert path.read_text() == '{"old": 1}'
    assert os.listdir(tmp_path) == ["out.json"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        common.write_json(str(tmp_path / "no" / "dir.json"), {})


def test_command_json_into_a_missing_folder_is_a_usage_error(capsys, coco, tmp_path):
    status, _, err = run(capsys, "debug-data", *coco["args"], "--config", CONFIG, "--images",
                         "0", "--check-limit", "1", "--out", tmp_path / "d", "--json",
                         tmp_path / "missing" / "r.json")
    assert status == 2 and "does not exist" in err
    assert not (tmp_path / "missing").exists()


# ---------------------------------------------------------------------------- structure
def test_tools_imports_point_one_way():
    """cli -> parser, commands -> models -> common: no command line module imports back up."""
    order = {"mrcnn.tools.common": 0, "mrcnn.tools.models": 1, "mrcnn.tools.inspect_weights": 1,
             "mrcnn.tools.debug_data": 1, "mrcnn.tools.commands": 2, "mrcnn.tools.parser": 2,
             "mrcnn.tools.cli": 3}
    tools_dir = os.path.join(ROOT, "mrcnn", "tools")
    seen = 0
    for folder, _, files in os.walk(tools_dir):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            module = "mrcnn." + os.path.relpath(path, os.path.join(ROOT, "mrcnn"))[:-3].replace(
                os.sep, ".").removesuffix(".__init__")
            level = next((v for k, v in order.items() if module == k
                          or module.startswith(k + ".")), None)
            if level is None:
                continue
            seen += 1
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                for target in targets:
                    if target in order and not target.startswith(module):
                        assert order[target] <= level, f"{module} imports {target}"
    assert seen >= 12


def test_the_command_line_selects_agg_the_library_does_not(tmp_path):
    code = ("import matplotlib\n"
            "from mrcnn.tools import cli\n"
            "import mrcnn.visualize\n"
            "print(matplotlib.rcParams._get_backend_or_none())\n"
            "cli.main(['inspect-weights', 'missing.h5'])\n"
            "print(matplotlib.rcParams._get_backend_or_none())\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lower().split() == ["none", "agg"]


# ---------------------------------------------------------------------------- usage errors
@pytest.mark.parametrize("command", ["train", "evaluate", "detect", "inspect-weights",
                                     "debug-data"])
def test_every_command_has_help(capsys, command):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0 and out.startswith(f"usage: mrcnn {command}")


def test_usage_errors_are_one_line_and_status_2(capsys, coco, tmp_path):
    cases = [
        ([], "required: COMMAND"),
        (["train", "--epochs", "x"], "invalid int value"),
        (["train", *coco["args"], "--config", CONFIG, "--set", "NOT_A_SETTING=1"],
         "Unknown config setting(s): NOT_A_SETTING"),
        (["train", *coco["args"], "--set", "lowercase=1"], "NAME=VALUE"),
        (["train", *coco["args"], "--config", "no.such:Config"], "cannot import"),
        (["train", "--config", CONFIG], "no dataset"),
        (["train", "--train", coco["train"]], "--train needs --train-images"),
        (["train", "--train", str(tmp_path / "missing.json"), "--train-images", "."],
         "COCO annotation file not found"),
        (["train", "--dataset", str(tmp_path / "nothing")], "VIA dataset folder not found"),
        (["train", *coco["args"], "--set", "NUM_CLASSES=2"], "the dataset has 4 classes"),
        (["train", *coco["args"], "--epochs", "0"], "--epochs must be >= 1"),
        (["train", *coco["args"], "--config", CONFIG, "--weights", "last", "--logs",
          str(tmp_path)], "Could not find a run directory"),
        (["evaluate", *coco["args"], "--weights", str(tmp_path / "no.h5")], "not found"),
        (["detect", str(tmp_path / "nope.png")], "image"),
        (["inspect-weights", str(tmp_path / "no.h5")], "No weights file"),
        (["inspect-weights", coco["train"], "--set", "A=1"], "--set needs --config"),
        (["debug-data", *coco["args"], "--image-ids", "99"], "out of range"),
    ]
    for argv, message in cases:
        status, out, err = run(capsys, *argv)
        assert status == 2, (argv, out, err)
        assert message in err, (argv, err)
        assert "Traceback" not in err
        if argv:  # argparse prints its usage first; ours is exactly one line
            assert len(err.strip().splitlines()) == 1 or "usage:" in err, err


def test_python_dash_m_runs_the_command():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "mrcnn", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "debug-data" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "mrcnn", "train"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no dataset" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- debug-data
def test_debug_data_writes_pictures_and_finds_the_thin_object(capsys, coco, tmp_path):
    out_dir = tmp_path / "debug"
    status, out, err = run(capsys, "debug-data", *coco["args"], "--config", CONFIG,
                           "--images", "2", "--samples", "2", "--out", out_dir,
                           "--json", tmp_path / "debug.json", "--fail-on-unmatched")
    assert status == 1, err  # the thin object is effectively unmatched
    names = sorted(os.listdir(out_dir))
    assert names == ["image0000_anchors.png", "image0000_augmented.png", "image0000_gt.png",
                     "image0001_anchors.png", "image0001_augmented.png", "image0001_gt.png"]
    for name in names:
        image = cv2.imread(str(out_dir / name))
        assert image is not None and image.shape[0] > 50 and image.std() > 1
    assert "UNMATCHED" in out and "(100, 10, 103, 100)" in out
    assert "RPN_ANCHOR_RATIOS" in out  # a ratio suggestion for the 3 x 90 object
    result = json.loads((tmp_path / "debug.json").read_text())
    bad = [o for o in result["objects"] if o["status"] == "unmatched"]
    assert [(o["image_id"], tuple(o["box"]), o["class_name"]) for o in bad] == [
        (0, THIN, "square")]
    assert len(result["checked_images"]) == 6
    # The shapes themselves (sides 40 px and more) all have anchors at IoU >= 0.3.
    assert all(o["best_iou"] >= 0.3 for o in result["objects"] if tuple(o["box"]) != THIN)


def test_debug_data_on_a_via_folder(capsys, tmp_path):
    write_via(tmp_path / "via" / "train", 2, seed=3)
    status, out, err = run(capsys, "debug-data", "--dataset", tmp_path / "via",
                           "--class-attribute", "shape", "--augment", "none", "--images", "1",
                           "--config", CONFIG, "--out", tmp_path / "d")
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "d")) == ["image0000_anchors.png", "image0000_gt.png"]
    assert "effectively unmatched (IoU < 0.3): 0" in out


def test_inspect_weights_lists_layers(capsys, tmp_path):
    import keras

    from mrcnn.checkpoint.h5_format import save_weights_h5

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="mrcnn_class_logits")(inputs))
    save_weights_h5(model, tmp_path / "w.h5")
    status, out, err = run(capsys, "inspect-weights", tmp_path / "w.h5")
    assert status == 0, err
    assert "mrcnn_class_logits/kernel:0  (4, 3)" in out and "bias:0  (3)" in out


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def trained(coco, tmp_path_factory):
    """One training run through the command line: 2 steps of 1 epoch, all layers."""
    logs = tmp_path_factory.mktemp("logs")
    status = cli.main(["train", *coco["args"], "--config", CONFIG, "--set", *TINY,
                       "--weights", "none", "--epochs", "1", "--logs", str(logs),
                       "--augment", "flip", "--workers", "1"])
    assert status == 0
    runs = [d for d in os.listdir(logs) if d.startswith("shapes")]
    assert len(runs) == 1
    checkpoint = logs / runs[0] / "mask_rcnn_shapes_0001.h5"
    return {"logs": logs, "checkpoint": checkpoint}


@pytest.mark.slow
def test_train_writes_a_checkpoint_with_the_dataset_class_count(trained):
    assert trained["checkpoint"].is_file()
    with h5py.File(trained["checkpoint"], "r") as f:
        assert "mrcnn_class_logits" in f
        # NUM_CLASSES = 4 came from the dataset: 4 class logits.
        kernel = f["mrcnn_class_logits"]["mrcnn_class_logits"]["kernel:0"]
        assert kernel.shape == (64, 4)


@pytest.mark.slow
def test_evaluate_prints_our_table_and_cocoeval(capsys, caplog, coco, trained, tmp_path):
    caplog.set_level(logging.INFO, logger="mrcnn.evaluation.coco")
    # The architecture settings (pyramid size 32, fc 64) come from the checkpoint's config.
    status, out, err = run(capsys, "evaluate", *coco["args"], "--config", CONFIG,
                           "--weights", "last", "--logs", trained["logs"], "--limit", "2",
                           "--set", "DETECTION_MIN_CONFIDENCE=0.0",
                           "--json", tmp_path / "eval.json")
    assert status == 0, err
    assert "Evaluation on 2 images" in out and "mAP@0.5" in out
    assert "COCOeval bbox: AP" in out and "COCOeval segm: AP" in out
    # pycocotools really ran (it is skipped when the model detects nothing).
    assert "COCOeval bbox on 2 images" in caplog.text
    assert "COCOeval segm on 2 images" in caplog.text
    numbers = json.loads((tmp_path / "eval.json").read_text())
    assert set(numbers) == {"evaluation", "coco_bbox", "coco_segm"}
    for stats in (numbers["coco_bbox"], numbers["coco_segm"]):
        assert len(stats) == 12 and all(-1.0 <= v <= 1.0 for v in stats.values())


@pytest.mark.slow
def test_detect_writes_overlay_pngs(capsys, coco, trained, tmp_path):
    images = sorted(os.listdir(coco["val_images"]))[:2]
    paths = [os.path.join(coco["val_images"], name) for name in images]
    status, out, err = run(capsys, "detect", *paths, "--config", CONFIG, "--weights",
                           trained["checkpoint"], "--out", tmp_path / "det",
                           "--class-names", "square,circle,triangle")
    assert status == 0, err
    for name in images:
        written = tmp_path / "det" / name.replace(".png", "_detections.png")
        assert written.is_file() and written.stat().st_size > 1000
        assert cv2.imread(str(written)).std() > 1
        assert f"{name}: " in out


@pytest.mark.slow
def test_inspect_weights_diffs_the_checkpoint_against_a_config(capsys, trained):
    status, out, err = run(capsys, "inspect-weights", trained["checkpoint"], "--config", CONFIG,
                           "--set", *TINY)
    assert status == 0, err
    assert "mrcnn_class_logits" in out and "res2a_branch2a" in out
    assert "Diff against the model of" in out


@pytest.mark.slow
def test_train_heads_on_a_via_folder_from_a_checkpoint(capsys, trained, tmp_path):
    write_via(tmp_path / "via" / "train", 2, seed=3)  # no val/ folder: no validation
    shutil.copy(trained["checkpoint"], tmp_path / "start.h5")  # a new run, not a resume
    status, out, err = run(capsys, "train", "--dataset", tmp_path / "via", "--class-attribute",
                           "shape", "--config", CONFIG, "--set", *TINY, "STEPS_PER_EPOCH=1",
                           "--weights", tmp_path / "start.h5", "--exclude", "heads",
                           "--epochs", "1", "--logs", tmp_path / "logs", "--workers", "1")
    assert status == 0, err
    assert "Training heads from epoch 0 to 1" in out
    runs = os.listdir(tmp_path / "logs")
    assert len(runs) == 1
    assert (tmp_path / "logs" / runs[0] / "mask_rcnn_shapes_0001.h5").is_file()


def test_augment_choices_use_albumentations_without_imgaug(monkeypatch):
    """A plain install has no imgaug: --augment builds the same flips with albumentations."""
    import albumentations as A

    from mrcnn.data import augment as aug

    def no_imgaug():
        raise ImportError("No module named 'imgaug'")

    monkeypatch.setattr(aug, "import_imgaug", no_imgaug)
    assert isinstance(common.make_augmentation("flip"), A.HorizontalFlip)
    assert isinstance(common.make_augmentation("flips"), A.Compose)
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    mask = np.zeros((4, 6, 1), bool)
    mask[1, 0, 0] = True
    flipped = 0
    for seed in range(8):
        out_image, out_mask = aug.augment(image, mask, common.make_augmentation("flip"),
                                          np.random.default_rng(seed))
        if np.array_equal(out_image, image[:, ::-1]):
            flipped += 1
            assert out_mask[1, 5, 0] and out_mask.sum() == 1
        else:
            assert np.array_equal(out_image, image) and np.array_equal(out_mask, mask)
    assert 0 < flipped < 8


def test_debug_data_default_augmentation_needs_no_library(monkeypatch, tmp_path, caplog):
    """Without imgaug or albumentations, debug-data's default draws no augmented samples
    instead of failing; with --augment flip it names the extra to install."""
    import mrcnn.tools.commands.debug_data as command

    calls = {}
    monkeypatch.setattr(command, "augmentation_available", lambda: False)
    monkeypatch.setattr("mrcnn.tools.debug_data.debug_dataset",
                        lambda *a, **k: calls.setdefault("augmentation", k["augmentation"]))
    dataset = ShapesDataset()
    dataset.load_shapes(2, 128, 128, seed=1)
    dataset.prepare()
    monkeypatch.setattr(command, "load_dataset", lambda args, subset: (dataset, None))
    args = cli.build_parser().parse_args(["debug-data", "--dataset", "x", "--out",
                                          str(tmp_path)])
    assert args.augment is None
    with caplog.at_level(logging.INFO, logger=command.__name__):
        command.run(args)
    assert calls["augmentation"] is None
    assert "mrcnn[augment]" in caplog.text

    monkeypatch.setitem(sys.modules, "albumentations", None)  # import fails
    monkeypatch.setattr("mrcnn.data.augment.import_imgaug",
                        lambda: (_ for _ in ()).throw(ImportError("no imgaug")))
    with pytest.raises(common.UsageError, match=r'mrcnn\[augment\].*--augment none'):
        common.make_augmentation("flip")
