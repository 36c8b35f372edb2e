"""mrcnn.modeling.builder: each component reads its Config fields (and only the builder does),
graphs of both modes, the dtype policy scoped to building."""

import keras
import pytest
from tiny_config import TinyConfig

from mrcnn.modeling import builder


class Custom(TinyConfig):
    """Values unlike the defaults, so a field read from the wrong place shows."""

    POST_NMS_ROIS_TRAINING = 48
    POST_NMS_ROIS_INFERENCE = 24
    RPN_NMS_THRESHOLD = 0.6
    PRE_NMS_LIMIT = 300
    RPN_BBOX_STD_DEV = (0.2, 0.2, 0.3, 0.3)
    BBOX_STD_DEV = (0.15, 0.15, 0.25, 0.25)
    TRAIN_ROIS_PER_IMAGE = 12
    ROI_POSITIVE_RATIO = 0.25
    MASK_SHAPE = [28, 28]
    USE_MINI_MASK = False
    DETECTION_MAX_INSTANCES = 7
    DETECTION_MIN_CONFIDENCE = 0.4
    DETECTION_NMS_THRESHOLD = 0.45


def test_proposal_count_follows_the_mode():
    config = Custom()
    for mode, count in (("training", 48), ("inference", 24)):
        layer = builder.proposal(config, mode)
        cfg = layer.get_config()
        assert layer.name == "ROI"
        assert cfg["proposal_count"] == count
        assert cfg["nms_threshold"] == pytest.approx(0.6)
        assert cfg["pre_nms_limit"] == 300
        assert list(cfg["rpn_bbox_std_dev"]) == pytest.approx([0.2, 0.2, 0.3, 0.3])


def test_detection_and_target_layers_take_the_config_values():
    config = Custom()
    det = builder.detection(config).get_config()
    assert det["name"] == "mrcnn_detection"
    assert (det["detection_max_instances"], det["detection_min_confidence"],
            det["detection_nms_threshold"]) == (7, pytest.approx(0.4), pytest.approx(0.45))
    assert list(det["bbox_std_dev"]) == pytest.approx([0.15, 0.15, 0.25, 0.25])
    targets = builder.detection_targets(config).get_config()
    assert targets["name"] == "proposal_targets"
    assert (targets["train_rois_per_image"], targets["roi_positive_ratio"]) == (
        12, pytest.approx(0.25))
    assert list(targets["mask_shape"]) == [28, 28] and targets["use_mini_mask"] is False
    assert list(targets["bbox_std_dev"]) == pytest.approx([0.15, 0.15, 0.25, 0.25])


def test_image_input_is_fixed_only_for_square_or_crop_training():
    config = TinyConfig()
    assert tuple(builder.image_input("training", config).shape) == (None, 128, 128, 3)
    assert tuple(builder.image_input("inference", config).shape) == (None, None, None, 3)
    config.IMAGE_RESIZE_MODE = "pad64"
    assert tuple(builder.image_input("training", config).shape) == (None, None, None, 3)
    assert builder.image_meta_input(config).shape[1] == config.IMAGE_META_SIZE


def test_bad_mode_is_named():
    with pytest.raises(ValueError, match="'train'"):
        builder.build_graph("train", TinyConfig())
    with pytest.raises(ValueError, match="'eval'"):
        builder.proposal(TinyConfig(), "eval")


def test_dtype_policy_is_scoped_and_restored_on_error():
    before = keras.config.dtype_policy().name
    with builder.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert keras.layers.Dense(2).dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(RuntimeError), builder.dtype_policy("mixed_bfloat16"):
        raise RuntimeError("build failed")
    assert keras.config.dtype_policy().name == before
    with builder.dtype_policy(None):
        assert keras.config.dtype_policy().name == before


def test_rpn_outputs_concatenate_every_level_in_order():
    config = TinyConfig()
    rpn = builder.rpn(config)
    assert rpn.name == "rpn_model"
    maps = [keras.Input((s, s, config.TOP_DOWN_PYRAMID_SIZE)) for s in (32, 16, 8, 4, 2)]
    logits, probs, deltas = builder.rpn_outputs(rpn, maps)
    anchors = len(config.RPN_ANCHOR_RATIOS) * sum(s * s for s in (32, 16, 8, 4, 2))
    assert tuple(logits.shape) == tuple(probs.shape) == (None, anchors, 2)
    assert tuple(deltas.shape) == (None, anchors, 4)


@pytest.mark.slow
def test_both_graphs_wire_the_same_components():
    config = TinyConfig()
    train_inputs, train_outputs = builder.build_graph("training", config)
    infer_inputs, infer_outputs = builder.build_graph("inference", config)
    assert [t.name for t in infer_inputs] == ["input_image", "input_image_meta",
                                              "input_anchors"]
    assert len(train_outputs) == 14 and len(infer_outputs) == 7
    # detections: [batch, DETECTION_MAX_INSTANCES, (y1, x1, y2, x2, class_id, score)]
    assert tuple(infer_outputs[0].shape)[1:] == (config.DETECTION_MAX_INSTANCES, 6)
    assert tuple(infer_outputs[4].shape)[1:] == (config.POST_NMS_ROIS_INFERENCE, 4)
    assert tuple(train_outputs[7].shape)[1:] == (config.POST_NMS_ROIS_TRAINING, 4)
    # Without USE_RPN_ROIS the training graph takes the ROIs as its last input.
    config.USE_RPN_ROIS = False
    inputs, _ = builder.build_graph("training", config)
    assert inputs[-1].name == "input_roi"
    assert tuple(inputs[-1].shape) == (None, config.POST_NMS_ROIS_TRAINING, 4)
