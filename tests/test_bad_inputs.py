"""One test per row of the input side of docs/RELIABILITY.md (issue 11): bad COCO files, bad
`detect()` inputs, bad `load_mask` returns, bad configs, and the command line's advice.

Each test does the damage for real (writes the broken file, passes the broken array) and checks
the error names the item (file, image id, annotation id, index, field, value), or that the
repair the user turned on is logged and counted.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
from PIL import Image

from mrcnn.config import Config
from mrcnn.data.dataset import Dataset
from mrcnn.data.formats import CocoDataset
from mrcnn.data.ground_truth import load_image_gt
from mrcnn.engine import predictor
from mrcnn.tools import cli
from mrcnn.tools.common import UsageError, _load_coco, for_command_line

# pycocotools 2.x calls np.array(copy=False) on numpy 2: its own deprecation, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 32, 40
CATEGORIES = [{"id": 1, "name": "box"}, {"id": 2, "name": "bar"}]


def rect(y1, x1, y2, x2):
    """A rectangle as a COCO polygon (pixel-edge coordinates): covers rows y1..y2-1."""
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def coco_files(tmp_path, edit=None):
    """Two 32x40 PNG images, one box each (image 1: rows 2-11, image 2: rows 20-29)."""
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(image_dir / name)
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W},
                   {"id": 2, "file_name": "b.png", "height": H, "width": W}],
        "categories": CATEGORIES,
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [rect(2, 3, 12, 13)],
             "bbox": [3.0, 2.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0},
            {"id": 20, "image_id": 2, "category_id": 2, "segmentation": [rect(20, 5, 30, 35)],
             "bbox": [5.0, 20.0, 30.0, 10.0], "area": 300.0, "iscrowd": 0},
        ],
    }
    if edit is not None:
        edit(data)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path), str(image_dir)


def load(tmp_path, edit=None, **kwargs):
    dataset = CocoDataset()
    dataset.load_coco(*coco_files(tmp_path, edit), **kwargs)
    dataset.prepare()
    return dataset


def index_of(dataset, coco_id):
    return dataset.image_from_source_map[f"coco.{coco_id}"]


# ------------------------------------------------------------------------------------ COCO
def test_coco_duplicate_annotation_id_is_an_error_or_keeps_the_first(tmp_path, caplog):
    def duplicate(data):
        data["annotations"][1]["id"] = 10  # image 2's annotation reuses image 1's id

    with pytest.raises(ValueError, match=r"annotation id 10 \(image id 2\): annotation id 10 "
                                         r"is already used \(image id 1\)"):
        load(tmp_path, duplicate)
    with caplog.at_level(logging.WARNING):
        dataset = load(tmp_path, duplicate, skip_invalid=True)
    assert dataset.skipped == {"duplicate_annotation_id": 1}
    assert "already used" in caplog.text
    # Image 1 keeps its own mask (rows 2-11), not image 2's (the bug: rows 20-29).
    masks, class_ids = dataset.load_mask(index_of(dataset, 1))
    assert masks.shape == (H, W, 1) and class_ids.tolist() == [1]
    assert np.nonzero(masks[:, :, 0].any(axis=1))[0].tolist() == list(range(2, 12))


@pytest.mark.parametrize("bbox, match", [
    ([3.0, 2.0, -10.0, 10.0], "negative width or height"),
    ([3.0, 2.0, 10.0], r"must be 4 finite numbers \[x, y, width, height\], got \[3.0, 2.0, 10"),
    ([3.0, 2.0, float("nan"), 10.0], "must be 4 finite numbers"),
    ([100.0, 2.0, 10.0, 10.0], "entirely outside the 40x32 image"),
])
def test_coco_bad_bbox_is_an_error(tmp_path, bbox, match):
    def bad_bbox(data):
        data["annotations"][0]["bbox"] = bbox

    with pytest.raises(ValueError, match=r"annotation id 10 \(image id 1\): 'bbox'.*" + match):
        load(tmp_path, bad_bbox)
    dataset = load(tmp_path, bad_bbox, skip_invalid=True)
    assert dataset.skipped == {"bad_bbox": 1}
    assert dataset.load_mask(index_of(dataset, 1))[0].shape == (H, W, 0)


def test_coco_duplicate_and_mixed_image_ids_are_errors(tmp_path):
    def duplicate(data):
        data["images"][1]["id"] = 1

    def mixed(data):
        data["images"][1]["id"] = "2"
        data["annotations"][1]["image_id"] = "2"

    with pytest.raises(ValueError, match="image id 1 appears more than once"):
        load(tmp_path, duplicate)
    with pytest.raises(ValueError, match="image ids mix integers and strings"):  # not TypeError
        load(tmp_path, mixed)
    with pytest.raises(ValueError, match="more than once"):  # never skipped: ambiguous
        load(tmp_path, duplicate, skip_invalid=True)


def test_coco_wrong_size_in_json_fails_at_load_time(tmp_path):
    def wrong_size(data):
        data["images"][0]["height"] = H + 8

    with pytest.raises(ValueError, match=rf"image id 1: image file .*a.png' is {W}x{H} but the "
                                         rf"JSON says {W}x{H + 8}"):
        load(tmp_path, wrong_size)
    dataset = load(tmp_path, wrong_size, skip_invalid=True)
    assert dataset.skipped == {"size_mismatch": 1} and dataset.num_images == 1


def test_coco_zero_byte_image_fails_at_load_time_and_is_skipped(tmp_path):
    json_path, image_dir = coco_files(tmp_path)
    open(f"{image_dir}/a.png", "wb").close()
    with pytest.raises(ValueError, match=r"image id 1: image file .*a.png' is empty \(0 bytes\)"):
        CocoDataset().load_coco(json_path, image_dir)
    dataset = CocoDataset()
    dataset.load_coco(json_path, image_dir, skip_invalid=True)
    dataset.prepare()
    assert dataset.skipped == {"empty_image_file": 1} and dataset.num_images == 1
    # The base loader names the empty file too, instead of imageio's "pip install imageio[pyav]".
    plain = Dataset()
    plain.add_image("x", "a", f"{image_dir}/a.png")
    plain.prepare()
    with pytest.raises(ValueError, match=r"image 0 \(source id 'a'.*the file is empty") as info:
        plain.load_image(0)
    assert "pyav" not in str(info.value)


def test_coco_unreadable_image_file_fails_at_load_time(tmp_path):
    json_path, image_dir = coco_files(tmp_path)
    with open(f"{image_dir}/b.png", "w") as f:
        f.write("not a png")
    with pytest.raises(ValueError, match=r"image id 2: image file .*b.png' cannot be read"):
        CocoDataset().load_coco(json_path, image_dir)
    dataset = CocoDataset()
    dataset.load_coco(json_path, image_dir, skip_invalid=True)
    assert dataset.skipped == {"unreadable_image": 1} and len(dataset.image_info) == 1


def write_gif(path, frames):
    images = [Image.fromarray(np.full((H, W, 3), 40 * (k + 1), np.uint8)) for k in range(frames)]
    images[0].save(path, save_all=frames > 1, append_images=images[1:])


def test_animated_gif_is_an_error_and_a_still_gif_loads(tmp_path):
    def gif(data):
        data["images"][0]["file_name"] = "a.gif"

    json_path, image_dir = coco_files(tmp_path, gif)
    write_gif(f"{image_dir}/a.gif", 3)
    with pytest.raises(ValueError, match=r"image id 1: image file .*a.gif' is animated "
                                         r"\(3 frames\)"):
        CocoDataset().load_coco(json_path, image_dir)
    dataset = Dataset()
    dataset.add_image("x", "anim", f"{image_dir}/a.gif")
    write_gif(tmp_path / "still.gif", 1)
    dataset.add_image("x", "still", str(tmp_path / "still.gif"))
    dataset.prepare()
    with pytest.raises(ValueError, match=r"source id 'anim'.*animated \(3 frames"):
        dataset.load_image(0)
    # skimage reads a one-frame GIF as [1, H, W, C]: it loads as the still image it is.
    still = dataset.load_image(1)
    assert still.shape == (H, W, 3) and still.dtype == np.uint8 and int(still[0, 0, 0]) == 40


# ------------------------------------------------------------------------------------ detect()
class SmallConfig(Config):
    NAME = "small"
    NUM_CLASSES = 3
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64


class RecordingModel:
    """Stands in for the inference graph: records its input, returns no detections."""

    def __init__(self, config):
        self.config = config
        self.inputs = None

    def predict_on_batch(self, inputs):
        self.inputs = inputs
        n = len(inputs[0])
        return [np.zeros((n, 5, 6), np.float32), None, None,
                np.zeros((n, 5, 28, 28, self.config.NUM_CLASSES), np.float32), None, None, None]


def molded(images):
    return predictor.mold_inputs(images, SmallConfig())[0]


def test_detect_float_image_in_unit_range_is_scaled_with_a_warning(caplog):
    image = np.zeros((16, 16, 3), np.uint8)
    image[4:12, 4:12] = 200
    with caplog.at_level(logging.WARNING):
        scaled = molded([image.astype(np.float32) / 255.0])
    assert "image 0 (shape (16, 16, 3), dtype float32): values in [0, 0.784314] look like " \
           "[0, 1]; scaled by 255" in caplog.text
    # Equal up to resize_image's rounding of interpolated uint8 pixels (< 0.5) at the edges;
    # unscaled, the square would be 200 grey levels darker.
    np.testing.assert_allclose(scaled, molded([image]), atol=0.5)
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # floats in [0, 255] are used as they are
        np.testing.assert_allclose(molded([image.astype(np.float64)]), molded([image]),
                                   atol=0.5)
    assert caplog.text == ""


@pytest.mark.parametrize("bad, count", [(np.nan, 1), (np.inf, 1), (-np.inf, 1), ("all", 768)])
def test_detect_nan_or_inf_pixels_are_errors(bad, count):
    image = np.full((16, 16, 3), 0.5, np.float32)
    if bad == "all":
        image[:] = np.nan
    else:
        image[3, 4, 1] = bad
    with pytest.raises(ValueError, match=rf"image 1 \(shape \(16, 16, 3\), dtype float32\): "
                                         rf"{count} of 768 pixel values are NaN or infinite"):
        predictor.detect_images(RecordingModel(SmallConfig()), SmallConfig(),
                                [np.zeros((16, 16, 3), np.uint8), image])


def test_detect_uint16_and_bool_images_are_converted_like_load_image(caplog):
    config = SmallConfig()
    model = RecordingModel(config)
    deep = np.full((16, 16, 3), 257 * 200, np.uint16)
    with caplog.at_level(logging.WARNING):
        results = predictor.detect_images(model, config, [deep])  # used to crash deep in TF
    assert len(results) == 1 and results[0]["masks"].shape == (16, 16, 0)
    assert "image 0 (shape (16, 16, 3), dtype uint16): converted to uint8" in caplog.text
    np.testing.assert_array_equal(model.inputs[0],
                                  molded([np.full((16, 16, 3), 200, np.uint8)]))
    flags = np.zeros((16, 16, 3), bool)
    flags[:8] = True
    expected = flags.astype(np.uint8) * 255
    np.testing.assert_array_equal(molded([flags]), molded([expected]))


def test_detect_single_array_instead_of_a_list_is_a_type_error():
    with pytest.raises(TypeError, match=r"takes a list of images, got one array of shape "
                                        r"\(80, 90, 3\); pass \[image\]"):
        predictor.detect_images(RecordingModel(SmallConfig()), SmallConfig(),
                                np.zeros((80, 90, 3), np.uint8))
    # A [N, H, W, C] batch array is still a list of images.
    assert len(molded(np.zeros((2, 16, 16, 3), np.uint8))) == 2


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 400, 3), (400, 1, 3)])
def test_detect_one_pixel_wide_images_are_errors(shape):
    with pytest.raises(ValueError, match=re.escape(f"image 0: shape {shape} is too small: "
                                                   "height and width must be at least 2")):
        molded([np.zeros(shape, np.uint8)])


def test_training_load_image_rejects_what_detect_rejects():
    class ArrayDataset(Dataset):
        def __init__(self, images):
            super().__init__()
            self.images = images
            for k in range(len(images)):
                self.add_image("arr", k, None)
            self.add_class("arr", 1, "thing")

        def load_image(self, image_id):
            return self.images[image_id]

        def load_mask(self, image_id):
            mask = np.zeros(self.images[image_id].shape[:2] + (1,), bool)
            mask[2:6, 2:6] = True
            return mask, np.array([1], np.int32)

    nan_image = np.full((16, 16, 3), 100.0)
    nan_image[0, 0, 0] = np.nan
    dataset = ArrayDataset([nan_image])
    dataset.prepare()
    with pytest.raises(ValueError, match=r"image 0 \(path None\): load_image: 1 of 768 pixel "
                                         "values are NaN or infinite"):
        load_image_gt(dataset, SmallConfig(), 0)


# ------------------------------------------------------------------------------------ load_mask
class MaskDataset(Dataset):
    """One 16x16 image whose load_mask returns whatever the test puts in `result`."""

    def __init__(self, result):
        super().__init__()
        self.result = result
        self.add_class("m", 1, "thing")
        self.add_image("m", "only", None)

    def load_image(self, image_id):
        return np.full((16, 16, 3), 90, np.uint8)

    def load_mask(self, image_id):
        return self.result


def gt(result):
    dataset = MaskDataset(result)
    dataset.prepare()
    return load_image_gt(dataset, SmallConfig(), 0)


def test_float_mask_with_noisy_background_is_an_error():
    soft = np.full((16, 16, 1), 0.01, np.float32)  # the bug: this became a full-image box
    soft[4:8, 4:8] = 1.0
    with pytest.raises(ValueError, match=r"image 0 \(path None\): load_mask returned float32 "
                                         r"masks with values other than 0 and 1 \(e.g. "
                                         r"np.float32\(0.01\) at \(0, 0\), instance 0; 240 such "
                                         r"pixels\); return bool masks, e.g. mask > 0.5"):
        gt((soft, np.array([1], np.int32)))
    # A float mask of exact 0/1 values is fine: the same box as the bool mask, not the image.
    binary = soft == 1.0
    _, _, class_ids, bbox, _ = gt((binary.astype(np.float64), np.array([1], np.int32)))
    _, _, _, bool_bbox, _ = gt((binary, np.array([1], np.int32)))
    assert class_ids.tolist() == [1]
    np.testing.assert_array_equal(bbox, bool_bbox)
    assert 16 <= bbox[0, 2] - bbox[0, 0] <= 17  # 4 rows at scale 4 (64 / 16)


def test_load_mask_returning_none_is_an_error():
    mask = np.zeros((16, 16, 1), bool)
    with pytest.raises(ValueError, match=r"image 0 \(path None\): load_mask returned "
                                         "class_ids=None"):
        gt((mask, None))
    with pytest.raises(ValueError, match="load_mask returned masks=None"):
        gt((None, np.array([1], np.int32)))


# ------------------------------------------------------------------------------------ Config
@pytest.mark.parametrize("field, value", [("NUM_CLASSES", "4"), ("LEARNING_RATE", "0.001"),
                                          ("IMAGE_MIN_SCALE", "0"),
                                          ("RPN_ANCHOR_SCALES", ("32", 64, 128, 256, 512))])
def test_config_string_values_are_errors_naming_the_setting(field, value):
    cls = type("StringConfig", (Config,), {field: value})
    with pytest.raises(ValueError, match=rf"Config {field}=.*must hold numbers, not strings"):
        cls()
    config = Config()
    setattr(config, field, value)  # set after construction: caught by validate()
    with pytest.raises(ValueError, match=rf"Config {field}="):
        config.validate()


def test_config_changed_after_construction_recomputes_derived_values():
    config = Config()
    assert (config.BATCH_SIZE, config.IMAGE_META_SIZE) == (2, 12 + 1)
    config.IMAGES_PER_GPU = 3
    config.GPU_COUNT = 2
    config.IMAGE_MAX_DIM = 512
    config.IMAGE_CHANNEL_COUNT = 1
    config.MEAN_PIXEL = np.array([120.0])
    config.NUM_CLASSES = 5
    config.validate()
    assert config.BATCH_SIZE == 6
    assert config.IMAGE_SHAPE.tolist() == [512, 512, 1]
    assert config.IMAGE_META_SIZE == 12 + 5
    assert config.to_dict()["BATCH_SIZE"] == 6
    config.IMAGE_RESIZE_MODE = "crop"
    config.IMAGE_MIN_DIM = 256
    config.validate()
    assert config.IMAGE_SHAPE.tolist() == [256, 256, 1]


def test_config_derived_value_set_directly_is_an_error():
    config = Config()
    config.BATCH_SIZE = 8
    with pytest.raises(ValueError, match=r"Config BATCH_SIZE=8: is derived from "
                                         r"IMAGES_PER_GPU \* GPU_COUNT and cannot be set"):
        config.validate()


def test_maskrcnn_revalidates_a_config_changed_after_construction(tmp_path):
    from mrcnn.model import MaskRCNN

    config = SmallConfig()
    config.NUM_CLASSES = "4"
    with pytest.raises(ValueError, match="Config NUM_CLASSES='4'"):
        MaskRCNN("inference", config, str(tmp_path))


def test_config_image_dim_advice():
    with pytest.raises(ValueError, match=r"Config IMAGE_MAX_DIM=1000: must be divisible by 64 "
                                         r".*try 960 or 1024"):
        type("C", (Config,), {"IMAGE_MAX_DIM": 1000})()
    # pad64 mode does not use IMAGE_MAX_DIM (resize_image needs IMAGE_MIN_DIM % 64 == 0).
    config = type("P", (Config,), {"IMAGE_RESIZE_MODE": "pad64", "IMAGE_MAX_DIM": 1000,
                                   "IMAGE_MIN_DIM": 512})()
    assert config.IMAGE_MAX_DIM == 1000
    with pytest.raises(ValueError, match=r"Config IMAGE_MIN_DIM=500: must be a multiple of 64 "
                                         r"in 'pad64' mode .*try 448 or 512"):
        type("P", (Config,), {"IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": 500})()


# ------------------------------------------------------------------------------------ CLI
def test_command_line_names_its_own_flags(tmp_path, capsys):
    json_path, image_dir = coco_files(tmp_path)
    open(f"{image_dir}/a.png", "wb").close()
    with pytest.raises(UsageError, match=r"is empty \(0 bytes\) \(add --skip-invalid to "
                                         r"skip such items\)") as info:
        _load_coco(json_path, image_dir, "train", skip_invalid=False)
    assert "skip_invalid=True" not in str(info.value)
    dataset, _ = _load_coco(json_path, image_dir, "train", skip_invalid=True)
    assert dataset.num_images == 1 and dataset.skipped == {"empty_image_file": 1}

    out = tmp_path / "debug"
    status = cli.main(["debug-data", "--train", json_path, "--train-images", image_dir,
                       "--out", str(out), "--images", "1", "--samples", "1"])
    err = capsys.readouterr().err
    assert status == 2 and "--skip-invalid" in err and "skip_invalid=True" not in err

    weights_error = ValueError("w.h5: shape mismatch in 1 layer(s):\n  mrcnn_bbox_fc: ...\n"
                               "Pass exclude=['mrcnn_bbox_fc'] to leave these layers alone, "
                               "skip_mismatch=True to skip them, or reshape=True when only the "
                               "shape (not the size) differs.")
    assert str(for_command_line(weights_error)).endswith(
        "Add --exclude mrcnn_bbox_fc to leave these layers alone.")
    count_error = ValueError("w.h5: layer 'fpn_c5p5': weight count differs. Exclude it with "
                             "exclude=['fpn_c5p5'].")
    assert str(for_command_line(count_error)).endswith("Exclude it with --exclude fpn_c5p5.")
    missing = for_command_line(FileNotFoundError("x: not found (pass skip_invalid=True to skip "
                                                 "missing images)"))
    assert isinstance(missing, FileNotFoundError)
    assert str(missing) == "x: not found (add --skip-invalid to skip missing images)"
