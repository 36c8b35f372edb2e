"""bench/train_step.py's pieces that decide what is measured (the timing itself is not tested:
no timing thresholds in unit tests)."""

import importlib.util
import os

import pytest

from mrcnn.modeling.builder import build_keras_model

_PATH = os.path.join(os.path.dirname(__file__), "..", "bench", "train_step.py")
_SPEC = importlib.util.spec_from_file_location("bench_train_step", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_matterport_case_runs_the_mask_head_on_every_roi_in_float32():
    config, infer = bench.make_configs("matterport", "resnet50", 8, 128, tiny=False)
    assert config.MIXED_PRECISION is None and config.BATCH_SIZE == 8
    assert not config.MASK_ON_POSITIVE_ROIS and not infer.MASK_ON_DETECTIONS
    assert infer.BATCH_SIZE == 1 and config.FPN_CLASSIF_FC_LAYERS_SIZE == 1024


@pytest.mark.parametrize("case, policy", [("float32", None), ("auto", "auto"),
                                          ("mixed_bfloat16", "mixed_bfloat16")])
def test_our_cases_use_our_graph_and_their_policy(case, policy):
    config, infer = bench.make_configs(case, "resnet101", 2, 256, tiny=True)
    assert config.MIXED_PRECISION == infer.MIXED_PRECISION == policy
    assert config.MASK_ON_POSITIVE_ROIS and infer.MASK_ON_DETECTIONS
    assert list(config.IMAGE_SHAPE) == [256, 256, 3] and config.TOP_DOWN_PYRAMID_SIZE == 32


def test_ratios_are_matterport_seconds_over_ours_per_backbone():
    rows = [{"backbone": "r50", "case": "float32", "heads": 1.0, "all": 2.0, "detect": 0.5},
            {"backbone": "r50", "case": "matterport", "heads": 3.0, "all": 4.0, "detect": 0.5},
            {"backbone": "r101", "case": "float32", "heads": 1.0, "all": 1.0, "detect": 1.0}]
    bench.add_ratios(rows)
    assert (rows[0]["heads_x"], rows[0]["all_x"], rows[0]["detect_x"]) == (3.0, 2.0, 1.0)
    assert rows[1]["heads_x"] == 1.0
    assert rows[2]["heads_x"] is None  # no matterport row for that backbone


def test_parse_args_quick_and_checks():
    args = bench.parse_args(["--quick", "--repeats", "1", "--precision", "float32", "auto"])
    assert (args.backbone, args.batch, args.repeats, args.tiny) == ("resnet50", 2, 1, True)
    assert args.precision == ["float32", "auto"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--image-size", "100"])
    for bad in (["--repeats", "0"], ["--batch", "0"], ["--quick", "--repeats", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    with pytest.raises(SystemExit):
        bench.parse_args(["--weights", "/nonexistent/mask_rcnn.h5"])


@pytest.mark.slow
def test_mask_head_flops_follow_the_roi_counts():
    config, infer = bench.make_configs("matterport", "resnet50", 2, 128, tiny=True)
    ours, _ = bench.make_configs("float32", "resnet50", 2, 128, tiny=True)
    model = build_keras_model("training", config)
    full = bench.estimate_flops(model, config, "training")
    positives = bench.estimate_flops(model, ours, "training")
    none = bench.estimate_flops(model, infer, "inference", mask_rois=0)
    one = bench.estimate_flops(model, infer, "inference", mask_rois=1)
    five = bench.estimate_flops(model, infer, "inference")  # DETECTION_MAX_INSTANCES = 5
    assert full["backbone"] == positives["backbone"] > 0
    assert full["heads"] > positives["heads"]
    per_roi = one["heads"] - none["heads"]
    assert per_roi > 0 and five["heads"] == pytest.approx(none["heads"] + 5 * per_roi)


def test_config_option_names_the_base_class():
    assert bench.config_class(None) is bench.ShapesConfig
    demo = bench.config_class("samples.shapes.train:DemoConfig")
    config, infer = bench.make_configs("float32", "resnet50", 8, 128, tiny=False, base=demo)
    assert config.TOP_DOWN_PYRAMID_SIZE == demo.TOP_DOWN_PYRAMID_SIZE == 128
    assert infer.MASK_SHAPE == [14, 14] and infer.BATCH_SIZE == 1
    with pytest.raises(ValueError, match="module:Class"):
        bench.config_class("samples.shapes.train")
    with pytest.raises(ValueError, match="NoSuchConfig"):
        bench.config_class("samples.shapes.train:NoSuchConfig")
