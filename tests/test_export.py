"""The serving export: a fresh TensorFlow-only process gets what MaskRCNN.detect gets."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_refactor_golden import GoldenInferenceConfig, named_weights

from mrcnn import model as modellib
from mrcnn.export import export_saved_model, read_class_names
from mrcnn.export.serving import check_exportable
from samples.shapes.shapes import ShapesDataset


class ExportConfig(GoldenInferenceConfig):
    NAME = "export"
    IMAGE_MIN_DIM = 64  # images between 64 and 128 px keep their size; larger ones shrink


CLIENT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    served = tf.saved_model.load(sys.argv[1])
    fn = served.signatures["serving_default"]
    data = np.load(sys.argv[2])
    out = {}
    for key in sorted(data):
        result = fn(images=tf.constant(data[key]))
        for name, value in result.items():
            out[f"{key}/{name}"] = value.numpy()
    assert "mrcnn" not in sys.modules
    np.savez(sys.argv[3], **out)
    print(sorted((k, str(v.dtype), v.shape) for k, v in out.items()))
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    dataset = ShapesDataset()
    dataset.load_shapes(3, 128, 128, seed=7)
    dataset.prepare()
    model = modellib.MaskRCNN("inference", ExportConfig(), str(tmp / "logs"))
    named_weights(model.keras_model)
    path = export_saved_model(model.keras_model, model.config, str(tmp / "serving" / "1"),
                              class_names=dataset.class_names)
    return model, dataset, path, tmp


def match(served, reference, label):
    """Each served detection equals a reference detection: same class, box within 1 px, score
    within 1e-4, mask IoU > 0.99 (detections with tied scores may come in either order)."""
    n = int(served["num_detections"])
    assert n == len(reference["class_ids"]), label
    used = set()
    for k in range(n):
        box = served["boxes"][k]
        candidates = [j for j in range(n) if j not in used
                      and reference["class_ids"][j] == served["class_ids"][k]
                      and np.abs(reference["rois"][j] - box).max() <= 1
                      and abs(reference["scores"][j] - served["scores"][k]) <= 1e-4]
        assert candidates, f"{label}: detection {k} {box} has no twin in detect()"
        j = candidates[0]
        used.add(j)
        a = served["masks"][k].astype(bool)
        b = reference["masks"][..., j]
        iou = (a & b).sum() / max((a | b).sum(), 1)
        assert iou > 0.99, f"{label}: mask {k} IoU {iou:.4f}"
    assert not served["class_ids"][n:].any() and not served["masks"][n:].any()


@pytest.mark.slow
def test_saved_model_in_a_fresh_process_matches_detect(exported):
    model, dataset, path, tmp = exported
    big = np.repeat(np.repeat(dataset.load_image(2), 2, 0), 2, 1)[:200, :230]
    batches = {"a": np.stack([dataset.load_image(0), dataset.load_image(1)]),  # 128 x 128
               "b": np.ascontiguousarray(dataset.load_image(1)[:100, :90])[np.newaxis],
               "c": np.ascontiguousarray(big)[np.newaxis]}  # resized down to 111 x 128
    np.savez(tmp / "images.npz", **batches)
    client = tmp / "client.py"
    client.write_text(CLIENT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, str(client), path, str(tmp / "images.npz"),
                          str(tmp / "out.npz")], capture_output=True, text=True,
                         cwd=str(tmp), env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = np.load(tmp / "out.npz")
    for key, images in batches.items():
        assert out[f"{key}/masks"].dtype == np.uint8
        assert out[f"{key}/masks"].shape == (len(images), 5) + images.shape[1:3]
        assert out[f"{key}/boxes"].dtype == np.float32
        assert out[f"{key}/class_ids"].dtype == np.int32
        assert out[f"{key}/num_detections"].dtype == np.int32
        reference = model.detect(list(images))
        for i, ref in enumerate(reference):
            served = {name: out[f"{key}/{name}"][i] for name in
                      ("num_detections", "boxes", "class_ids", "scores", "masks")}
            assert served["num_detections"] > 0
            match(served, ref, f"batch {key} image {i}")


@pytest.mark.slow
def test_export_carries_class_names_and_config(exported):
    model, dataset, path, _ = exported
    assert read_class_names(path) == dataset.class_names
    with open(os.path.join(path, "assets", "config.json")) as f:
        config = json.load(f)
    assert config["NUM_CLASSES"] == 4 and config["IMAGE_MAX_DIM"] == 128
    umask = os.umask(0)
    os.umask(umask)
    mode = os.stat(os.path.join(path, "saved_model.pb")).st_mode & 0o777
    assert mode == 0o666 & ~umask
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".export-")]


@pytest.mark.slow
def test_export_refuses_a_non_empty_directory_and_bad_class_names(exported, tmp_path):
    model, dataset, path, _ = exported
    with pytest.raises(ValueError, match="not empty"):
        export_saved_model(model.keras_model, model.config, path)
    with pytest.raises(ValueError, match="class_names has 2 names but NUM_CLASSES is 4"):
        export_saved_model(model.keras_model, model.config, str(tmp_path / "x"),
                           class_names=["BG", "one"])
    assert not (tmp_path / "x").exists()


def test_only_square_rgb_configs_are_exportable():
    config = ExportConfig()
    check_exportable(config)

    class Pad64(ExportConfig):
        IMAGE_RESIZE_MODE = "pad64"

    with pytest.raises(ValueError, match="IMAGE_RESIZE_MODE='square'.*'pad64'"):
        check_exportable(Pad64())


@pytest.mark.slow
def test_tflite_needs_flex_ops_and_names_the_blockers(exported, tmp_path):
    from mrcnn.export.tflite import TFLiteConversionError, convert_to_tflite

    _, _, path, _ = exported
    with pytest.raises(TFLiteConversionError) as info:
        convert_to_tflite(path, str(tmp_path / "builtin.tflite"), select_tf_ops=False)
    assert {"CropAndResize", "InvertPermutation", "EnsureShape"} <= set(info.value.ops)
    assert not (tmp_path / "builtin.tflite").exists()
    out = convert_to_tflite(path, str(tmp_path / "flex.tflite"))
    with open(out, "rb") as f:
        assert f.read(8)[4:8] == b"TFL3"  # the TFLite flatbuffer identifier


def _serve(path, image):
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures["serving_default"]
    out = fn(images=tf.constant(image[np.newaxis]))
    return {name: value.numpy()[0] for name, value in out.items()}


@pytest.mark.slow
def test_maskrcnn_export_and_the_cli_serve_what_detect_finds(exported, tmp_path, capsys):
    from mrcnn.checkpoint.h5_format import save_weights_h5
    from mrcnn.tools import cli

    model, dataset, _, _ = exported
    image = dataset.load_image(1)
    reference = model.detect([image])[0]
    assert len(reference["class_ids"]) > 0

    path = model.export(str(tmp_path / "api" / "1"), class_names=dataset.class_names)
    assert read_class_names(path) == dataset.class_names
    match(_serve(path, image), reference, "MaskRCNN.export")

    weights = tmp_path / "weights.h5"
    save_weights_h5(model.keras_model, str(weights))
    status = cli.main(["export", "--config", f"{os.path.abspath(__file__)}:ExportConfig",
                       "--weights", str(weights), "--logs", str(tmp_path / "logs"),
                       "--output", str(tmp_path / "cli" / "1"),
                       "--class-names", ",".join(dataset.class_names[1:])])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert str(tmp_path / "cli" / "1") in out
    assert read_class_names(str(tmp_path / "cli" / "1")) == dataset.class_names
    match(_serve(str(tmp_path / "cli" / "1"), image), reference, "mrcnn export")
    # A second export into the same (now non-empty) directory is a usage error (status 2).
    status = cli.main(["export", "--config", f"{os.path.abspath(__file__)}:ExportConfig",
                       "--weights", str(weights), "--logs", str(tmp_path / "logs"),
                       "--output", str(tmp_path / "cli" / "1")])
    assert status == 2
    assert "not empty" in capsys.readouterr().err


def test_export_needs_an_inference_model(tmp_path):
    from tiny_config import TinyConfig

    model = modellib.MaskRCNN("training", TinyConfig(), str(tmp_path))
    with pytest.raises(ValueError, match="inference mode"):
        model.export(str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
