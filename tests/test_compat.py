"""matterport's compatibility surface: every name old code imports still exists."""

import ast
import inspect

import numpy as np
import pytest

from mrcnn import model as modellib
from mrcnn import utils, visualize
from mrcnn.config import Config

MODELLIB_NAMES = [
    "MaskRCNN", "log", "load_image_gt", "data_generator", "build_rpn_targets",
    "build_detection_targets", "mold_image", "unmold_image", "compose_image_meta",
    "parse_image_meta", "parse_image_meta_graph", "norm_boxes_graph", "denorm_boxes_graph",
    "resnet_graph", "compute_backbone_shapes", "rpn_class_loss_graph", "rpn_bbox_loss_graph",
    "mrcnn_class_loss_graph", "mrcnn_bbox_loss_graph", "mrcnn_mask_loss_graph",
]
UTILS_NAMES = [
    "Dataset", "extract_bboxes", "compute_iou", "compute_overlaps", "compute_overlaps_masks",
    "non_max_suppression", "box_refinement", "apply_box_deltas", "resize_image", "resize_mask",
    "minimize_mask", "expand_mask", "unmold_mask", "generate_anchors",
    "generate_pyramid_anchors", "trim_zeros", "compute_matches", "compute_ap",
    "compute_ap_range", "compute_recall", "norm_boxes", "denorm_boxes", "resize", "batch_slice",
    "download_trained_weights",
]
VISUALIZE_NAMES = [
    "display_images", "random_colors", "apply_mask", "display_instances", "display_differences",
    "draw_rois", "draw_box", "display_top_masks", "plot_precision_recall", "plot_overlaps",
    "draw_boxes", "display_table", "display_weight_stats",
]
MASKRCNN_METHODS = [
    "find_last", "load_weights", "get_imagenet_weights", "compile", "set_trainable",
    "set_log_dir", "train", "mold_inputs", "unmold_detections", "detect", "detect_molded",
    "get_anchors", "run_graph",
]
MASKRCNN_ATTRIBUTES = ["keras_model", "config", "mode", "model_dir", "log_dir",
                       "checkpoint_path", "epoch"]


@pytest.mark.parametrize("module, names", [
    (modellib, MODELLIB_NAMES), (utils, UTILS_NAMES), (visualize, VISUALIZE_NAMES)])
def test_module_names_exist_and_are_callable(module, names):
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module.__name__} lacks {missing}"
    assert all(callable(getattr(module, n)) for n in names)


def test_config_is_importable_and_matterport_shaped():
    class C(Config):
        NAME = "c"
        NUM_CLASSES = 2

    config = C()
    assert config.BATCH_SIZE == config.IMAGES_PER_GPU * config.GPU_COUNT
    assert tuple(config.IMAGE_SHAPE) == (1024, 1024, 3)


def test_config_display_prints_matterports_table(capsys):
    """display() prints "Configurations:", then one `NAME<padded to 30> value` line per
    setting in alphabetical order (matterport walks dir()), derived values included."""

    class C(Config):
        NAME = "c"
        NUM_CLASSES = 2
        IMAGES_PER_GPU = 3
        IMAGE_MAX_DIM = 512
        IMAGE_MIN_DIM = 256

    C().display()
    out = capsys.readouterr().out
    lines = out.strip("\n").splitlines()
    assert lines[0] == "Configurations:"
    assert out.startswith("\nConfigurations:\n") and out.endswith("\n\n\n")
    rows = lines[1:]
    assert all(len(row) > 31 and row[30] == " " and row[:30].rstrip() == row[:30].strip()
               for row in rows), rows
    values = {row[:30].strip(): row[31:] for row in rows}
    names = [row[:30].strip() for row in rows]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert values["NAME"] == "c" and values["NUM_CLASSES"] == "2"
    assert values["BATCH_SIZE"] == "3"  # IMAGES_PER_GPU x GPU_COUNT
    assert values["IMAGES_PER_GPU"] == "3" and values["GPU_COUNT"] == "1"
    assert ast.literal_eval(values["IMAGE_SHAPE"]) == [512, 512, 3]  # square mode: max dim
    assert values["IMAGE_META_SIZE"] == "14"  # 1 + 3 + 3 + 4 + 1 + NUM_CLASSES
    assert values["LEARNING_RATE"] == "0.001" and values["BACKBONE"] == "resnet101"
    assert f"{'NAME':30} c" in lines and f"{'NUM_CLASSES':30} 2" in lines
    # Every upper-case setting of the class is listed, plus the three derived values.
    settings = {n for n in dir(C) if n.isupper() and not callable(getattr(C, n))}
    assert set(names) == settings | {"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"}


def test_maskrcnn_methods_exist():
    missing = [n for n in MASKRCNN_METHODS if not callable(getattr(modellib.MaskRCNN, n, None))]
    assert not missing


def test_maskrcnn_signatures_keep_matterports_parameters():
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    empty = inspect.Parameter.empty
    assert params(modellib.MaskRCNN.__init__)[:4] == [
        ("self", empty), ("mode", empty), ("config", empty), ("model_dir", empty)]
    assert params(modellib.MaskRCNN.load_weights)[:4] == [
        ("self", empty), ("filepath", empty), ("by_name", False), ("exclude", None)]
    assert params(modellib.MaskRCNN.train)[:9] == [
        ("self", empty), ("train_dataset", empty), ("val_dataset", empty),
        ("learning_rate", empty), ("epochs", empty), ("layers", empty),
        ("augmentation", None), ("custom_callbacks", None), ("no_augmentation_sources", None)]
    assert [p[0] for p in params(modellib.MaskRCNN.detect)][:2] == ["self", "images"]
    assert [p[0] for p in params(modellib.MaskRCNN.detect_molded)][:3] == [
        "self", "molded_images", "image_metas"]
    assert [p[0] for p in params(modellib.MaskRCNN.unmold_detections)] == [
        "self", "detections", "mrcnn_mask", "original_image_shape", "image_shape", "window"]
    assert [p[0] for p in params(modellib.MaskRCNN.compile)] == [
        "self", "learning_rate", "momentum"]
    assert [p[0] for p in params(modellib.MaskRCNN.set_trainable)][:2] == [
        "self", "layer_regex"]


def test_modellib_log_prints_array_summary(capsys):
    modellib.log("boxes", np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    out = capsys.readouterr().out
    assert out.startswith("boxes") and "(2, 2)" in out and "float32" in out
    assert "1.00000" in out and "4.00000" in out
    modellib.log("just text")
    assert capsys.readouterr().out == "just text\n"


@pytest.mark.slow
def test_maskrcnn_instance_attributes(tmp_path):
    class Tiny(Config):
        NAME = "tinycompat"
        NUM_CLASSES = 2
        BACKBONE = "resnet50"
        IMAGES_PER_GPU = 1
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 64
        TOP_DOWN_PYRAMID_SIZE = 16
        FPN_CLASSIF_FC_LAYERS_SIZE = 16
        POST_NMS_ROIS_INFERENCE = 16
        DETECTION_MAX_INSTANCES = 4

    model = modellib.MaskRCNN("inference", Tiny(), str(tmp_path))
    missing = [n for n in MASKRCNN_ATTRIBUTES if not hasattr(model, n)]
    assert not missing
    assert model.mode == "inference" and model.model_dir == str(tmp_path)
    assert model.epoch == 0 and model.log_dir.startswith(str(tmp_path))
    assert "{epoch:04d}" in model.checkpoint_path
    assert model.keras_model.name == "mask_rcnn"
