"""A whole Mask R-CNN saves to `.keras` and reloads, in a fresh process and without
`custom_objects`, into a model that detects exactly what the original did."""

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from tiny_config import TinyConfig

pytestmark = pytest.mark.slow

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# Runs in a new interpreter: only importing mrcnn registers the custom layers.
RELOAD = """
import sys
import numpy as np
import keras
import mrcnn.modeling.layers  # registers every mrcnn>ClassName
from mrcnn.engine.predictor import detect_images
sys.path.insert(0, {tests!r})
from tiny_config import TinyConfig

class Config(TinyConfig):
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0

model = keras.saving.load_model({path!r})
images = list(np.load({images!r})["images"])
config = Config()
out = {{}}
for i, result in enumerate(detect_images(model, config, images)):
    for key, value in result.items():
        out[f"{{key}}_{{i}}"] = value
np.savez({out!r}, **out)
"""


class InferenceConfig(TinyConfig):
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0  # so that random weights still detect something


def test_inference_model_round_trip_in_a_fresh_process(tmp_path):
    from mrcnn import model as modellib
    from mrcnn.engine.predictor import detect_images
    from samples.shapes.shapes import ShapesDataset

    config = InferenceConfig()
    keras.utils.set_random_seed(1)
    model = modellib.MaskRCNN("inference", config, str(tmp_path))
    # Random weights call every ROI background; favour class 1 so that there are detections.
    logits = model.keras_model.get_layer("mrcnn_class_logits").layer
    logits.bias.assign(np.array([0.0, 3.0, 0.0, 0.0], np.float32))
    dataset = ShapesDataset()
    dataset.load_shapes(2, 128, 128, seed=4)
    dataset.prepare()
    images = [dataset.load_image(i) for i in dataset.image_ids]
    expected = detect_images(model.keras_model, config, images)
    assert all(len(r["class_ids"]) > 0 for r in expected)  # something to compare
    assert any(0 < r["masks"].mean() < 1 for r in expected)

    path = tmp_path / "m.keras"
    model.keras_model.save(path)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
    names = {layer["registered_name"] for layer in saved["config"]["layers"]}
    assert {"mrcnn>ProposalLayer", "mrcnn>DetectionLayer", "mrcnn>PyramidROIAlign",
            "mrcnn>TimeDistributed", "mrcnn>BatchNorm", "mrcnn>DetectionRows",
            "mrcnn>ScatterDetectionMasks"} <= names  # MASK_ON_DETECTIONS (the default)

    np.savez(tmp_path / "images.npz", images=np.stack(images))
    script = RELOAD.format(tests=os.path.dirname(__file__), path=str(path),
                           images=str(tmp_path / "images.npz"), out=str(tmp_path / "out.npz"))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    got = np.load(tmp_path / "out.npz")
    for i, result in enumerate(expected):
        np.testing.assert_array_equal(got[f"class_ids_{i}"], result["class_ids"])
        np.testing.assert_array_equal(got[f"rois_{i}"], result["rois"])
        np.testing.assert_allclose(got[f"scores_{i}"], result["scores"], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(got[f"masks_{i}"], result["masks"])


def test_every_graph_layer_survives_a_keras_round_trip():
    # Each registered layer rebuilds from its serialized form alone (no custom_objects).
    from mrcnn.modeling import layers as L

    made = [
        L.AnchorsLayer([[0, 0, 0.5, 0.5]], name="anchors"), L.NormBoxes(name="norm"),
        L.ImageMetaField("window", name="window"), L.IdentityLayer(name="output_rois"),
        L.DetectionBoxes(name="boxes"), L.TakeFirst(3, name="first"),
        L.ProposalLayer(10, 0.7, 20, [0.1, 0.1, 0.2, 0.2], name="ROI"),
        L.DetectionLayer(5, 0.5, 0.3, [0.1, 0.1, 0.2, 0.2], name="mrcnn_detection"),
        L.DetectionTargetLayer(8, 0.25, (4, 4), True, [0.1, 0.1, 0.2, 0.2], name="targets"),
        L.PyramidROIAlign((7, 7), name="roi_align"), L.BatchNorm(train_bn=False, name="bn"),
        L.TimeDistributed(keras.layers.Dense(3, name="fc_inner"), name="fc"),
        L.LossLayer("mrcnn_mask_loss"),
    ]
    for layer in made:
        blob = keras.saving.serialize_keras_object(layer)
        assert blob["registered_name"] == f"mrcnn>{type(layer).__name__}"
        clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(blob)))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
