"""Config: matterport defaults, derived values, to_dict/from_dict, validate()."""

import json

import numpy as np
import pytest

from mrcnn.config import Config


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 1 + 3
    IMAGES_PER_GPU = 4
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128


def test_matterport_defaults_and_derived_values():
    c = Config()
    assert c.BATCH_SIZE == 2
    assert c.IMAGE_SHAPE.tolist() == [1024, 1024, 3]
    assert c.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 1
    assert c.RPN_ANCHOR_SCALES == (32, 64, 128, 256, 512)
    assert c.MASK_SHAPE == [28, 28] and c.MINI_MASK_SHAPE == (56, 56)
    assert c.TRAIN_BN is False and c.GRADIENT_CLIP_NORM == 5.0
    assert c.KEEP_NEGATIVE_IMAGES is False


def test_subclass_derived_values():
    c = TinyConfig()
    assert c.BATCH_SIZE == 4
    assert c.IMAGE_SHAPE.tolist() == [128, 128, 3]
    assert c.IMAGE_META_SIZE == 12 + 4


def test_crop_mode_uses_min_dim():
    class CropConfig(TinyConfig):
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 64
    assert CropConfig().IMAGE_SHAPE.tolist() == [64, 64, 3]


def test_to_dict_is_json_serializable_and_round_trips():
    c = TinyConfig()
    d = c.to_dict()
    json.dumps(d)
    assert d["NAME"] == "tiny" and d["BATCH_SIZE"] == 4 and d["MEAN_PIXEL"] == [123.7, 116.8, 103.9]
    back = TinyConfig.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d
    assert isinstance(back.MEAN_PIXEL, np.ndarray)


def test_from_dict_overrides_and_recomputes_derived():
    c = TinyConfig.from_dict({"IMAGES_PER_GPU": 2, "IMAGE_MAX_DIM": 256, "BATCH_SIZE": 999})
    assert c.BATCH_SIZE == 2 and c.IMAGE_SHAPE.tolist() == [256, 256, 3]
    assert TinyConfig.IMAGES_PER_GPU == 4  # the class itself is untouched


def test_from_dict_unknown_key():
    with pytest.raises(ValueError, match="NOT_A_SETTING"):
        TinyConfig.from_dict({"NOT_A_SETTING": 1})


def test_display_prints_every_setting(capsys):
    TinyConfig().display()
    out = capsys.readouterr().out
    assert "NAME" in out and "tiny" in out and "IMAGE_META_SIZE" in out


@pytest.mark.parametrize("field, value, match", [
    ("IMAGE_MAX_DIM", 100, "IMAGE_MAX_DIM=100.*divisible by 64"),
    ("RPN_ANCHOR_SCALES", (8, 16, 32), "RPN_ANCHOR_SCALES.*one scale per pyramid level: 5"),
    ("MEAN_PIXEL", np.array([1.0, 2.0]), "MEAN_PIXEL.*IMAGE_CHANNEL_COUNT=3"),
    ("NUM_CLASSES", 0, "NUM_CLASSES=0"),
    ("IMAGES_PER_GPU", -1, "IMAGES_PER_GPU=-1"),
    ("TRAIN_ROIS_PER_IMAGE", 0, "TRAIN_ROIS_PER_IMAGE"),
    ("POST_NMS_ROIS_INFERENCE", 2.5, "POST_NMS_ROIS_INFERENCE"),
    ("ROI_POSITIVE_RATIO", 1.5, r"ROI_POSITIVE_RATIO=1.5.*\(0, 1\]"),
    ("RPN_NMS_THRESHOLD", 0.0, "RPN_NMS_THRESHOLD"),
    ("DETECTION_MIN_CONFIDENCE", -0.1, "DETECTION_MIN_CONFIDENCE"),
    ("IMAGE_RESIZE_MODE", "stretch", "IMAGE_RESIZE_MODE='stretch'"),
    ("BACKBONE", "vgg16", "BACKBONE='vgg16'"),
    ("MASK_SHAPE", [56, 56], "MASK_SHAPE"),
    ("RPN_ANCHOR_RATIOS", [0.5, -1], "RPN_ANCHOR_RATIOS"),
    ("LOSS_WEIGHTS", {"rpn_clas_loss": 1.0}, "rpn_clas_loss"),
    ("GRADIENT_CLIP_NORM", 0, "GRADIENT_CLIP_NORM"),
    ("LEARNING_RATE", 0, "LEARNING_RATE"),
    ("MIXED_PRECISION", "float16", "MIXED_PRECISION"),
    ("ROI_POSITIVE_RATIO", 0.004, "allows no positive ROI"),
])
def test_validate_names_field_and_value(field, value, match):
    bad = type("BadConfig", (TinyConfig,), {field: value})
    with pytest.raises(ValueError, match=match):
        bad()


def test_validate_catches_instance_changes_after_construction():
    c = TinyConfig()
    c.IMAGE_MAX_DIM = 130
    with pytest.raises(ValueError, match="IMAGE_MAX_DIM=130"):
        c.validate()


def test_callable_backbone_needs_shape_function():
    bad = type("Bad", (TinyConfig,), {"BACKBONE": staticmethod(lambda x: x)})
    with pytest.raises(ValueError, match="COMPUTE_BACKBONE_SHAPE"):
        bad()
    good = type("Good", (TinyConfig,), {"BACKBONE": staticmethod(lambda x: x),
                                         "COMPUTE_BACKBONE_SHAPE": staticmethod(lambda s: s)})
    assert good().BATCH_SIZE == 4


def test_grayscale_and_rgbd_configs():
    gray = type("Gray", (TinyConfig,), {"IMAGE_CHANNEL_COUNT": 1,
                                         "MEAN_PIXEL": np.array([100.0])})()
    assert gray.IMAGE_SHAPE.tolist() == [128, 128, 1]
    rgbd = type("RGBD", (TinyConfig,), {"IMAGE_CHANNEL_COUNT": 4,
                                         "MEAN_PIXEL": np.array([1.0, 2.0, 3.0, 4.0])})()
    assert rgbd.IMAGE_SHAPE.tolist() == [128, 128, 4]
