"""`mrcnn evaluate` and `mrcnn detect` end to end (mrcnn/tools/commands/evaluate.py, detect.py,
mrcnn/evaluation/runner.py) on a small COCO dataset of shapes and a randomly initialised tiny
model saved as a Keras-2 HDF5 file."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mrcnn.tools import cli
from mrcnn.tools.commands.detect import find_images
from mrcnn.tools.common import UsageError
from samples.shapes.shapes import ShapesDataset

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
CONFIG = os.path.join(os.path.dirname(__file__), "tiny_config.py") + ":TinyConfig"
SETTINGS = ["--set", "IMAGES_PER_GPU=1"]


def write_coco(folder, count, seed):
    shapes = ShapesDataset()
    shapes.load_shapes(count, 128, 128, seed=seed)
    shapes.prepare()
    images = folder / "images"
    images.mkdir(parents=True)
    data = {"images": [], "annotations": [],
            "categories": [{"id": i, "name": n} for i, n in enumerate(shapes.class_names[1:], 1)]}
    for image_id in shapes.image_ids:
        name = f"s{image_id:02d}.png"
        cv2.imwrite(str(images / name), shapes.load_image(image_id)[..., ::-1])
        data["images"].append({"id": int(image_id) + 1, "file_name": name, "height": 128,
                               "width": 128})
        masks, class_ids = shapes.load_mask(image_id)
        for k in range(masks.shape[2]):
            if not masks[..., k].any():
                continue
            rle = mask_utils.encode(np.asfortranarray(masks[..., k].astype(np.uint8)))
            data["annotations"].append({
                "id": len(data["annotations"]) + 1, "image_id": int(image_id) + 1,
                "category_id": int(class_ids[k]), "iscrowd": 0, "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "segmentation": {"size": [128, 128], "counts": rle["counts"].decode()}})
    (folder / "ann.json").write_text(json.dumps(data))
    return str(folder / "ann.json"), str(images)


def test_find_images_takes_files_and_sorted_image_files_of_folders(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt", "c.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    extra = tmp_path / "sub" / "z.bmp"
    extra.write_bytes(b"x")
    assert find_images([str(tmp_path), str(extra)]) == [
        str(tmp_path / "a.JPG"), str(tmp_path / "b.png"), str(tmp_path / "c.jpeg"), str(extra)]
    with pytest.raises(FileNotFoundError, match="nope.png"):
        find_images([str(tmp_path / "nope.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no image file"):
        find_images([str(tmp_path / "empty")])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tiny_config import TinyConfig

    from mrcnn import model as modellib
    from mrcnn.checkpoint import save_weights_h5

    root = tmp_path_factory.mktemp("evaldet")
    ann, images = write_coco(root / "val", 3, seed=2)

    class C(TinyConfig):
        IMAGES_PER_GPU = 1

    model = modellib.MaskRCNN("inference", C(), str(root / "logs"))
    weights = root / "tiny.h5"
    save_weights_h5(model.keras_model, weights)
    return {"ann": ann, "images": images, "weights": str(weights), "root": root}


@pytest.mark.slow
def test_evaluate_detects_once_and_writes_every_file(capsys, setup, tmp_path, monkeypatch):
    from mrcnn import model as modellib

    calls = []
    original = modellib.MaskRCNN.detect

    def counting(self, images, verbose=0):
        calls.append(len(images))
        return original(self, images, verbose=verbose)

    monkeypatch.setattr(modellib.MaskRCNN, "detect", counting)
    out = tmp_path / "eval"
    status = cli.main(["evaluate", "--train", setup["ann"], "--train-images", setup["images"],
                       "--config", CONFIG, *SETTINGS, "--weights", setup["weights"],
                       "--min-confidence", "0", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    assert calls == [1, 1, 1]  # one pass: 3 images, batch 1
    # The tables are printed once, COCOeval first and matterport's labelled as such.
    assert stdout.count("COCOeval bbox: AP") == 1 and stdout.count("COCOeval segm: AP") == 1
    assert stdout.count("matterport compute_ap") == 1 and stdout.count("mAP@0.5 ") == 1
    assert stdout.index("COCOeval bbox") < stdout.index("matterport compute_ap")
    assert "score >= 0" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"evaluation", "coco_bbox", "coco_segm"}
    assert len(metrics["coco_segm"]) == 12
    results = json.loads((out / "coco_results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {1, 2, 3}
    # The random model with threshold 0 keeps up to DETECTION_MAX_INSTANCES (5) per image.
    assert len(results) <= 15 and all(isinstance(r["segmentation"]["counts"], str)
                                      for r in results)
    per_image = json.loads((out / "per_image.json").read_text())
    assert [p["coco_image_id"] for p in per_image] == [1, 2, 3]
    assert sum(p["detections"] for p in per_image) == len(results)
    assert all(p["ground_truth"] >= 1 for p in per_image)
    png = cv2.imread(str(out / "precision_recall.png"))
    assert png is not None and png.shape[0] > 200 and png.std() > 1


@pytest.mark.slow
def test_evaluate_default_threshold_is_detectron2s(capsys, setup, tmp_path):
    status = cli.main(["evaluate", "--train", setup["ann"], "--train-images", setup["images"],
                       "--config", CONFIG, *SETTINGS, "--weights", setup["weights"],
                       "--limit", "1", "--json", str(tmp_path / "m.json")])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    assert "score >= 0.05" in stdout and "on 1 images" in stdout


@pytest.mark.slow
def test_detect_a_folder_to_json_without_pictures(capsys, setup, tmp_path):
    out_json = tmp_path / "det.json"
    status = cli.main(["detect", setup["images"], "--config", CONFIG, *SETTINGS,
                       "--weights", setup["weights"], "--min-confidence", "0", "--no-images",
                       "--out", str(tmp_path / "pics"), "--json", str(out_json), "--verbose",
                       "--class-names", "square,circle,triangle"])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    names = sorted(os.listdir(setup["images"]))
    assert "Processing 3 images" in stdout
    assert stdout.count("shape (128, 128, 3)") == 3
    assert not (tmp_path / "pics").exists()
    results = json.loads(out_json.read_text())
    assert results and {r["file_name"] for r in results} <= {
        os.path.join(setup["images"], n) for n in names}
    assert {r["image_id"] for r in results} <= {1, 2, 3}
    first = results[0]
    mask = mask_utils.decode({"size": first["segmentation"]["size"],
                              "counts": first["segmentation"]["counts"].encode()})
    assert mask.shape == (128, 128) and 1 <= first["category_id"] <= 3
    # Detection lines in folder order.
    positions = [stdout.index(os.path.join(setup["images"], n) + ":") for n in names]
    assert positions == sorted(positions)
