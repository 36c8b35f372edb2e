"""MeanAPCallback: an evaluation graph sharing the training model's weights, logged mAP."""

import numpy as np
import pytest
from tiny_config import TinyConfig as SharedTiny

from mrcnn import model as modellib
from mrcnn.engine.mean_ap import MeanAPCallback, shared_inference_model
from mrcnn.engine.predictor import detect_images
from mrcnn.evaluation.evaluator import evaluate_dataset
from samples.shapes.shapes import ShapesDataset


class TinyConfig(SharedTiny):
    NAME = "maptiny"
    DETECTION_MIN_CONFIDENCE = 0.0  # an untrained model must still produce detections
    STEPS_PER_EPOCH = 2
    LEARNING_RATE = 0.005


class TinyInference(TinyConfig):
    IMAGES_PER_GPU = 1


@pytest.fixture(scope="module")
def data():
    ds = ShapesDataset()
    ds.load_shapes(12, 128, 128, seed=3)
    ds.prepare()
    return ds


def test_is_an_epoch_metric_callback_naming_its_key(data):
    from mrcnn.engine.callbacks import EpochMetricCallback

    callback = MeanAPCallback(data, TinyConfig(), limit=2, name="mask_mAP")
    assert isinstance(callback, EpochMetricCallback)
    assert callback.metric_names == ("mask_mAP",)
    assert callback.image_ids == list(data.image_ids[:2])


def test_rejects_bad_arguments(data):
    with pytest.raises(ValueError, match="every"):
        MeanAPCallback(data, TinyConfig(), every=0)
    with pytest.raises(ValueError, match="at least one"):
        MeanAPCallback(data, TinyConfig(), image_ids=[])


@pytest.mark.slow
def test_logged_map_equals_separate_evaluation(tmp_path, data):
    config = TinyConfig()
    model = modellib.MaskRCNN("training", config, str(tmp_path))
    callback = MeanAPCallback(data, config, image_ids=data.image_ids[:4], every=1)
    history = model.train(data, data, learning_rate=config.LEARNING_RATE, epochs=1,
                          layers="all", custom_callbacks=[callback], workers=1, verbose=0)
    logged = history.history["mAP"][0]
    assert callback.history == [(1, logged)]

    # The shared graph uses the training model's own variables: no copies.
    shared = shared_inference_model(model.keras_model, config)
    train_vars = {id(v) for v in model.keras_model.weights}
    assert {id(v) for v in shared.weights} <= train_vars

    # A separate inference model loading the checkpoint of the same epoch agrees.
    inference = modellib.MaskRCNN("inference", TinyInference(), str(tmp_path))
    inference.load_weights(model.find_last(), by_name=True)
    separate = evaluate_dataset(inference, data, TinyInference(), image_ids=data.image_ids[:4],
                                iou_thresholds=(0.5,)).map
    assert separate == pytest.approx(logged, abs=1e-6)

    # And the detections themselves match the inference model's.
    image = data.load_image(0)
    a = detect_images(shared, config, [image])[0]
    b = inference.detect([image])[0]
    np.testing.assert_array_equal(a["class_ids"], b["class_ids"])
    np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)
