"""The main job, samples/shapes/train.py: config selection and a --quick run end to end."""

import glob
import os

import pytest

from samples.shapes import train as demo


def test_default_configs_train_eval_and_picture():
    config, infer, evaluation = demo.make_configs(demo.parse_args([]))
    assert config.BACKBONE == "resnet50" and config.BATCH_SIZE == 8
    assert infer.BATCH_SIZE == 1 and infer.DETECTION_MIN_CONFIDENCE == 0.5
    assert evaluation.DETECTION_MIN_CONFIDENCE == 0.0  # mAP ranks every detection
    assert config.TOP_DOWN_PYRAMID_SIZE == infer.TOP_DOWN_PYRAMID_SIZE == 128


def test_pretrained_weights_switch_to_matterport_sizes():
    config, infer, _ = demo.make_configs(demo.parse_args(["--weights", "coco"]))
    assert config.BACKBONE == infer.BACKBONE == "resnet101"
    assert (config.TOP_DOWN_PYRAMID_SIZE, config.FPN_CLASSIF_FC_LAYERS_SIZE,
            config.MASK_POOL_SIZE, list(config.MASK_SHAPE)) == (256, 1024, 14, [28, 28])
    config, _, _ = demo.make_configs(demo.parse_args(["--weights", "imagenet",
                                                      "--backbone", "resnet101"]))
    assert config.BACKBONE == "resnet101" and config.TOP_DOWN_PYRAMID_SIZE == 256


def test_command_line_overrides():
    config, infer, _ = demo.make_configs(demo.parse_args(["--steps", "7", "--lr", "0.1"]))
    assert config.STEPS_PER_EPOCH == 7 and config.LEARNING_RATE == 0.1
    assert infer.LEARNING_RATE == 0.1


@pytest.mark.slow
def test_quick_run_writes_checkpoint_and_picture(tmp_path, capsys):
    score = demo.main(["--quick", "--logs", str(tmp_path), "--eval-images", "4"])
    assert 0.0 <= score <= 1.0
    runs = glob.glob(os.path.join(str(tmp_path), "shapes*"))
    assert len(runs) == 1
    assert os.path.isfile(os.path.join(runs[0], "mask_rcnn_shapes_0001.h5"))
    picture = os.path.join(runs[0], "detections.png")
    assert os.path.getsize(picture) > 1000
    out = capsys.readouterr().out
    assert "mAP@0.5 on" in out and picture in out
