"""bench/profile_step.py: which network part an op of the profile is charged to, and the
summary arithmetic (the profiler run itself is exercised by the slow smoke test)."""

import importlib.util
import os
import sys

import pytest

_ROOT = os.path.join(os.path.dirname(__file__), "..")
_SPEC = importlib.util.spec_from_file_location(
    "bench_profile_step", os.path.join(_ROOT, "bench", "profile_step.py"))
sys.path.insert(0, os.path.abspath(_ROOT))
profile_step = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(profile_step)


@pytest.mark.parametrize("name, part", [
    ("mask_rcnn_1/res5b_branch2b_1/BiasAdd", "backbone"),
    ("mask_rcnn_1/conv1_1/BiasAdd", "backbone"),
    ("gradient_tape/mask_rcnn_1/bn_conv1_1/batchnorm/mul", "backbone"),
    ("gradient_tape/mask_rcnn_1/mrcnn_mask_conv2_1/mrcnn_mask_conv2_inner_1/convolution",
     "mask"),
    ("mask_rcnn_1/mrcnn_class_logits_1/MatMul", "classifier"),
    ("mask_rcnn_1/mrcnn_bbox_fc_1/MatMul", "classifier"),
    ("mask_rcnn_1/rpn_model_1/rpn_conv_shared_1/Relu", "rpn"),
    ("mask_rcnn_1/fpn_p2_1/BiasAdd", "fpn"),
    ("mask_rcnn_1/ROI_1/NonMaxSuppressionV3", "proposals"),
    ("mask_rcnn_1/proposal_targets_1/GatherV2", "targets"),
    ("gradient_tape/mask_rcnn_1/roi_align_classifier_1/CropAndResizeGradImage", "roi_align"),
    ("mask_rcnn_1/mrcnn_mask_loss_1/Mean", "losses"),
    ("sgd/Square_42", "optimizer"),
    ("AddN_121", "other"),
])
def test_ops_are_charged_to_the_layer_scope_they_come_from(name, part):
    assert profile_step.part_of(name) == part


def test_summary_shares_sum_to_one_and_rank_ops():
    rows = [{"type": "Conv2D", "operation": "mask_rcnn_1/res2a_branch2a_1/BiasAdd",
             "self_us": 600.0},
            {"type": "Conv2D", "operation": "mask_rcnn_1/mrcnn_mask_conv1_1/x/BiasAdd",
             "self_us": 300.0},
            {"type": "AddN", "operation": "AddN_1", "self_us": 100.0}]
    summary = profile_step.summarize(rows, top=2)
    assert summary["total_self_ms"] == pytest.approx(1.0)
    assert summary["parts"] == pytest.approx({"backbone": 0.6, "mask": 0.3, "other": 0.1})
    assert summary["types"] == pytest.approx({"Conv2D": 0.9, "AddN": 0.1})
    assert [r["share"] for r in summary["top_ops"]] == pytest.approx([0.6, 0.3])
    assert summary["backward_ops"] == {}
    rows.append({"type": "Conv2DBackpropFilter", "self_us": 50.0,
                 "operation": "gradient_tape/mask_rcnn_1/res2a_branch2a_1/Conv2DBackpropFilter"})
    assert profile_step.summarize(rows, top=2)["backward_ops"] == {"backbone": 1}


@pytest.mark.slow
def test_tiny_profile_runs_and_charges_most_time_to_named_parts(tmp_path):
    out = tmp_path / "profile.json"
    result = profile_step.main(["--tiny", "--backbone", "resnet50", "--batch", "2",
                                "--steps", "1", "--json", str(out)])
    assert out.is_file()
    for graph in ("heads", "all", "detect"):
        parts = result[graph]["parts"]
        assert sum(parts.values()) == pytest.approx(1.0)
        assert parts.get("other", 0.0) < 0.5, parts
    # A heads step does not differentiate the frozen backbone; an all-layers step does. (Time
    # shares cannot show this: the heads step has fewer backward ops elsewhere too, so its
    # backbone share of a smaller total can be the larger one.)
    assert result["heads"]["backward_ops"].get("backbone", 0) == 0, result["heads"]["backward_ops"]
    assert result["all"]["backward_ops"].get("backbone", 0) > 0, result["all"]["backward_ops"]
    assert result["heads"]["backward_ops"].get("mask", 0) > 0, result["heads"]["backward_ops"]
