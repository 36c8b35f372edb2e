"""Tests of mrcnn.data.formats.via (VIA polygon folders) and samples/balloon/balloon.py."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import skimage.io

from mrcnn.data.formats import ViaDataset
from samples.balloon import balloon

H, W = 40, 50


def write_png(path, background=(30, 60, 90)):
    image = np.full([H, W, 3], background, dtype=np.uint8)
    image[5:15, 5:20] = (200, 10, 10)
    cv2.imwrite(str(path), image[..., ::-1])
    return image


def polygon_region(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


def square_region(y1, x1, y2, x2, **attributes):
    """Vertices on pixel centres: skimage fills rows y1..y2 and columns x1..x2 inclusive."""
    return polygon_region([x1, x2, x2, x1], [y1, y1, y2, y2], **attributes)


def via_file(folder, entries, form="dict"):
    """Write entries {filename: [regions]} as VIA 1.x ("dict" regions), 2.x ("list") or a
    2.x project file ("project")."""
    data = {}
    for filename, regions in entries.items():
        if form == "dict":
            regions = {str(k): r for k, r in enumerate(regions)}
        data[f"{filename}1234"] = {"filename": filename, "size": 1234, "regions": regions,
                                   "file_attributes": {}}
    if form == "project":
        data = {"_via_settings": {}, "_via_img_metadata": data}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "via_region_data.json"), "w") as f:
        json.dump(data, f)


def make_folder(root, subset, regions_by_file, form="dict"):
    folder = os.path.join(root, subset)
    os.makedirs(folder, exist_ok=True)
    for k, filename in enumerate(regions_by_file):
        write_png(os.path.join(folder, filename), (30 + 40 * k, 60, 90))
    via_file(folder, regions_by_file, form)
    return folder


def rect(y1, x1, y2, x2):
    mask = np.zeros([H, W], dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


# ---------------------------------------------------------------- loading
@pytest.mark.parametrize("form", ["dict", "list", "project"])
def test_load_via_forms_give_the_drawn_masks(tmp_path, form):
    make_folder(tmp_path, "train", {
        "a.png": [square_region(3, 5, 10, 14), square_region(20, 30, 30, 45)],
        "b.png": [{"shape_attributes": {"name": "rect", "x": 2, "y": 4, "width": 6,
                                        "height": 3}, "region_attributes": {}}],
        "unlabelled.png": []})
    dataset = ViaDataset()
    dataset.load_via(str(tmp_path), "train")
    dataset.prepare()
    assert dataset.class_names == ["BG", "balloon"]
    assert [info["id"] for info in dataset.image_info] == ["a.png", "b.png"]
    assert dataset.skipped == {"no_regions": 1}
    masks, class_ids = dataset.load_mask(0)
    assert masks.shape == (H, W, 2) and masks.dtype == bool
    assert class_ids.tolist() == [1, 1]
    np.testing.assert_array_equal(masks[..., 0], rect(3, 5, 11, 15))
    np.testing.assert_array_equal(masks[..., 1], rect(20, 30, 31, 46))
    masks, _ = dataset.load_mask(1)
    np.testing.assert_array_equal(masks[..., 0], rect(4, 2, 8, 9))  # rect: vertices inclusive
    assert dataset.load_image(0).shape == (H, W, 3)
    assert dataset.image_reference(0) == os.path.join(str(tmp_path), "train", "a.png")


def test_circle_ellipse_and_class_attribute(tmp_path):
    make_folder(tmp_path, "val", {"a.png": [
        {"shape_attributes": {"name": "circle", "cx": 20, "cy": 20, "r": 6},
         "region_attributes": {"kind": "red"}},
        {"shape_attributes": {"name": "ellipse", "cx": 40, "cy": 10, "rx": 5, "ry": 3},
         "region_attributes": {"kind": {"blue": True, "red": False}}},
        square_region(30, 2, 35, 8, kind=" blue "),
    ]}, form="list")
    dataset = ViaDataset()
    dataset.load_via(str(tmp_path), "val", class_attribute="kind", source="colours")
    dataset.prepare()
    assert dataset.class_names == ["BG", "blue", "red"]
    masks, class_ids = dataset.load_mask(0)
    assert class_ids.tolist() == [2, 1, 1]
    circle = masks[..., 0]
    assert circle[20, 20] and circle[20, 25] and not circle[20, 27] and not circle[0, 0]
    assert abs(int(circle.sum()) - np.pi * 36) < 12
    ellipse = masks[..., 1]
    assert ellipse[10, 44] and not ellipse[10, 46] and ellipse[12, 40] and not ellipse[14, 40]


# ---------------------------------------------------------------- bad input
def test_missing_folder_file_and_malformed_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        ViaDataset().load_via(str(tmp_path), "train")
    folder = tmp_path / "train"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="via_region_data.json"):
        ViaDataset().load_via(str(tmp_path), "train")
    path = folder / "via_region_data.json"
    path.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        ViaDataset().load_via(str(tmp_path), "train")
    path.write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        ViaDataset().load_via(str(tmp_path), "train")
    path.write_text(json.dumps({"x": {"regions": []}}))
    with pytest.raises(ValueError, match="'filename'"):
        ViaDataset().load_via(str(tmp_path), "train")
    via_file(str(folder), {"a.png": []})
    write_png(folder / "a.png")
    with pytest.raises(ValueError, match="no annotated image"):
        ViaDataset().load_via(str(tmp_path), "train")


def test_missing_image_raises_or_is_skipped(tmp_path):
    folder = make_folder(tmp_path, "train", {"a.png": [square_region(3, 5, 10, 14)],
                                             "b.png": [square_region(3, 5, 10, 14)]})
    os.remove(os.path.join(folder, "b.png"))
    with pytest.raises(FileNotFoundError, match=r"image 'b.png'.*not found"):
        ViaDataset().load_via(str(tmp_path), "train")
    dataset = ViaDataset()
    dataset.load_via(str(tmp_path), "train", skip_invalid=True)
    assert dataset.skipped == {"missing_image_file": 1}
    assert [info["id"] for info in dataset.image_info] == ["a.png"]


@pytest.mark.parametrize("region, kind, message", [
    (polygon_region([1, 5], [1, 5]), "bad_polygon", "at least 3 points"),
    (polygon_region([1, 5, 9], [1, 5]), "bad_polygon", "as many x as y"),
    ({"shape_attributes": {"name": "polygon", "all_points_x": [1, 2, 3]}},
     "bad_polygon", "malformed 'polygon'"),
    ({"shape_attributes": {"name": "point", "cx": 3, "cy": 4}}, "unknown_shape",
     "shape 'point' is not one of"),
    ({"region_attributes": {}}, "bad_polygon", "no 'shape_attributes'"),
    (square_region(100, 100, 120, 130), "outside_image", "entirely outside the 50x40 image"),
    ({"shape_attributes": {"name": "circle", "cx": 5, "cy": 5, "r": 0}}, "bad_polygon",
     "radius"),
])
def test_bad_regions_raise_or_are_skipped(tmp_path, region, kind, message):
    make_folder(tmp_path, "train", {"a.png": [square_region(3, 5, 10, 14), region]})
    with pytest.raises(ValueError, match=r"image 'a.png', region 1: .*" + message):
        ViaDataset().load_via(str(tmp_path), "train")
    dataset = ViaDataset()
    dataset.load_via(str(tmp_path), "train", skip_invalid=True)
    dataset.prepare()
    assert dataset.skipped == {kind: 1}
    masks, _ = dataset.load_mask(0)
    assert masks.shape == (H, W, 1)


def test_missing_class_attribute(tmp_path):
    make_folder(tmp_path, "train", {"a.png": [square_region(3, 5, 10, 14, kind="cat"),
                                              square_region(3, 5, 10, 14),
                                              square_region(3, 5, 10, 14,
                                                            kind={"a": True, "b": True})]})
    with pytest.raises(ValueError, match="region 1: region attribute 'kind' holds no single"):
        ViaDataset().load_via(str(tmp_path), "train", class_attribute="kind")
    dataset = ViaDataset()
    dataset.load_via(str(tmp_path), "train", class_attribute="kind", skip_invalid=True)
    assert dataset.skipped == {"missing_class": 2}


def test_shape_partly_outside_is_clipped(tmp_path):
    make_folder(tmp_path, "train", {"a.png": [square_region(-5, 40, 8, 70)]})
    dataset = ViaDataset()
    dataset.load_via(str(tmp_path), "train")
    dataset.prepare()
    assert dataset.clipped == 1
    masks, _ = dataset.load_mask(0)
    np.testing.assert_array_equal(masks[..., 0], rect(0, 40, 9, W))


# ---------------------------------------------------------------- samples/balloon
class MaskModel:
    """Stand-in for an inference model: one instance covering the top-left quarter."""

    def __init__(self):
        self.shapes = []

    def detect(self, images, verbose=0):
        self.shapes += [np.asarray(image).shape for image in images]
        results = []
        for image in images:
            masks = np.zeros(image.shape[:2] + (1,), dtype=bool)
            masks[: image.shape[0] // 2, : image.shape[1] // 2, 0] = True
            results.append({"rois": np.array([[0, 0, image.shape[0] // 2, image.shape[1] // 2]]),
                            "class_ids": np.array([1]), "scores": np.array([0.99]),
                            "masks": masks})
        return results


def test_balloon_dataset_and_config(tmp_path):
    make_folder(tmp_path, "train", {"a.png": [square_region(3, 5, 10, 14)]})
    dataset = balloon.BalloonDataset()
    dataset.load_balloon(str(tmp_path), "train")
    dataset.prepare()
    assert dataset.class_info[1] == {"source": "balloon", "id": 1, "name": "balloon"}
    with pytest.raises(ValueError, match="subset"):
        dataset.load_balloon(str(tmp_path), "test")
    config = balloon.BalloonConfig()
    assert (config.NAME, config.NUM_CLASSES, config.DETECTION_MIN_CONFIDENCE) == \
        ("balloon", 2, 0.9)


def test_color_splash_by_hand():
    image = np.zeros([2, 3, 3], dtype=np.uint8)
    image[:] = (100, 200, 50)
    mask = np.zeros([2, 3, 2], dtype=bool)
    mask[0, 0, 0] = mask[1, 2, 1] = True
    splash = balloon.color_splash(image, mask)
    gray = round(0.2125 * 100 + 0.7154 * 200 + 0.0721 * 50)  # 168
    assert splash.dtype == np.uint8
    assert splash[0, 0].tolist() == [100, 200, 50] and splash[1, 2].tolist() == [100, 200, 50]
    assert splash[0, 1].tolist() == [gray] * 3
    assert (balloon.color_splash(image, np.zeros([2, 3, 0], bool)) == gray).all()
    with pytest.raises(ValueError, match="mask must be"):
        balloon.color_splash(image, np.zeros([3, 3, 1], bool))


def test_splash_image_is_written_and_reread(tmp_path):
    image = write_png(tmp_path / "in.png")
    out_dir = tmp_path / "out"
    path = balloon.detect_and_color_splash(MaskModel(), image_path=str(tmp_path / "in.png"),
                                           out_dir=str(out_dir))
    assert os.path.dirname(path) == str(out_dir) and path.endswith(".png")
    assert os.listdir(out_dir) == [os.path.basename(path)]  # no temporary file left
    written = skimage.io.imread(path)
    mask = np.zeros([H, W, 1], dtype=bool)
    mask[: H // 2, : W // 2] = True
    np.testing.assert_array_equal(written, balloon.color_splash(image, mask))
    assert written[5, 5].tolist() == [200, 10, 10]  # inside the mask: colour kept
    assert len(set(written[30, 40].tolist())) == 1  # outside: gray
    with pytest.raises(ValueError, match="exactly one"):
        balloon.detect_and_color_splash(MaskModel())
    with pytest.raises(FileNotFoundError):
        balloon.detect_and_color_splash(MaskModel(), image_path=str(tmp_path / "none.png"))


def test_splash_video(tmp_path):
    video = str(tmp_path / "in.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    for k in range(3):
        writer.write(np.full([24, 32, 3], 40 * k + 20, dtype=np.uint8))
    writer.release()
    model = MaskModel()
    path = balloon.detect_and_color_splash(model, video_path=video, out_dir=str(tmp_path))
    assert model.shapes == [(24, 32, 3)] * 3
    capture = cv2.VideoCapture(path)
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 3
    assert sorted(os.listdir(tmp_path)) == sorted(["in.avi", os.path.basename(path)])
    bad = tmp_path / "bad.avi"
    bad.write_text("not a video")
    with pytest.raises(ValueError, match="OpenCV cannot read"):
        balloon.detect_and_color_splash(model, video_path=str(bad), out_dir=str(tmp_path))


def test_balloon_command_line(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        balloon.main(["train", "--weights=coco"])  # no --dataset
    assert "--dataset is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        balloon.main(["splash", "--weights=coco"])
    assert balloon.main(["train", f"--dataset={tmp_path}", "--weights=coco"]) == 2
    assert "via_region_data.json" in capsys.readouterr().err
    assert balloon.main(["splash", "--weights=last", f"--image={tmp_path}/x.png"]) == 2
    write_png(tmp_path / "in.png")
    calls = {}

    def fake_load_model(mode, config, logs, weights):
        calls.update(mode=mode, weights=weights)
        return MaskModel()

    monkeypatch.setattr(balloon, "load_model", fake_load_model)
    status = balloon.main(["splash", "--weights=last", f"--image={tmp_path}/in.png",
                           f"--out-dir={tmp_path}/out"])
    assert status == 0 and calls == {"mode": "inference", "weights": "last"}
    assert len(os.listdir(tmp_path / "out")) == 1
