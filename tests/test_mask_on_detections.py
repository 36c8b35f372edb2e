"""MASK_ON_DETECTIONS: the mask head on the real detections only gives matterport's outputs.

The layers are checked against a loop reference on hand-made detections (padding in the middle,
images with different counts, no detection at all); then two inference graphs with the same
name-seeded weights (MASK_ON_DETECTIONS True and False, the latter matterport's graph) must give
the same detections, the same masks on the real rows, zero masks on the padding rows, and the
same detect() results.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_refactor_golden import named_weights
from tiny_config import TinyConfig

from mrcnn import model as modellib
from mrcnn.modeling.layers.detection import (
    DetectionRows,
    ScatterDetectionMasks,
    detection_order_graph,
)
from samples.shapes.shapes import ShapesDataset


def make_detections(class_ids):
    """[batch, N, 6] detections with distinct boxes; class_ids [batch, N], 0 = padding."""
    class_ids = np.asarray(class_ids, np.float32)
    batch, n = class_ids.shape
    det = np.zeros((batch, n, 6), np.float32)
    for b in range(batch):
        for i in range(n):
            if class_ids[b, i] > 0:
                y, x = 0.05 * i + 0.01 * b, 0.04 * i
                det[b, i] = [y, x, y + 0.3, x + 0.2, class_ids[b, i], 0.9 - 0.01 * i]
    return det


def fake_mask_head(boxes):
    """A per-row function of the boxes standing in for the mask head: [batch, K, 2, 3, 2]."""
    boxes = tf.convert_to_tensor(boxes)
    base = tf.reduce_sum(boxes * tf.constant([1.0, 10.0, 100.0, 1000.0]), axis=-1)
    grid = tf.reshape(tf.range(12, dtype=tf.float32), [2, 3, 2])
    return base[:, :, None, None, None] + grid + 1.0  # never 0 on a real row


# Padding in the middle and at the end; images of one batch with different counts.
CLASS_IDS = [[3, 0, 1, 2, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]]


def test_detection_order_puts_real_rows_first_stably():
    det = make_detections(CLASS_IDS)
    order, valid, count = detection_order_graph(tf.constant(det))
    np.testing.assert_array_equal(order.numpy(), [[0, 2, 3, 1, 4, 5], [0, 1, 2, 3, 4, 5],
                                                  [0, 1, 2, 3, 4, 5]])
    np.testing.assert_array_equal(valid.numpy(), np.asarray(CLASS_IDS) > 0)
    assert int(count) == 5


def test_detection_rows_keeps_the_real_boxes_trimmed_to_the_fullest_image():
    det = make_detections(CLASS_IDS)
    rows = DetectionRows()(det).numpy()
    assert rows.shape == (3, 5, 4)
    np.testing.assert_array_equal(rows[0, :3], det[0, [0, 2, 3], :4])
    np.testing.assert_array_equal(rows[0, 3:], 0)  # image 0's padding after its own rows
    np.testing.assert_array_equal(rows[1], 0)
    np.testing.assert_array_equal(rows[2], det[2, :5, :4])


def test_scatter_gives_the_full_computation_on_real_rows_and_zeros_elsewhere():
    det = make_detections(CLASS_IDS)
    fast = ScatterDetectionMasks()([fake_mask_head(DetectionRows()(det)), det]).numpy()
    full = fake_mask_head(det[..., :4]).numpy()  # matterport: every row
    assert fast.shape == full.shape == (3, 6, 2, 3, 2)
    for b, ids in enumerate(CLASS_IDS):
        for i, class_id in enumerate(ids):
            if class_id:
                np.testing.assert_array_equal(fast[b, i], full[b, i], err_msg=f"{b},{i}")
            else:
                np.testing.assert_array_equal(fast[b, i], 0, err_msg=f"{b},{i}")


def test_no_detection_at_all_gives_empty_rows_and_zero_masks():
    det = make_detections([[0, 0, 0, 0]])
    rows = DetectionRows()(det)
    assert tuple(rows.shape) == (1, 0, 4)
    masks = ScatterDetectionMasks()([fake_mask_head(rows), det]).numpy()
    assert masks.shape == (1, 4, 2, 3, 2)
    np.testing.assert_array_equal(masks, 0)


def test_layers_keep_the_mask_dtype_and_round_trip_their_config():
    det = make_detections([[2, 0, 1]])
    masks = tf.cast(fake_mask_head(DetectionRows()(det)), tf.bfloat16)
    assert ScatterDetectionMasks()([masks, det]).dtype == tf.bfloat16
    for layer in (DetectionRows(name="detection_boxes"),
                  ScatterDetectionMasks(name="detection_masks")):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(again) is type(layer) and again.name == layer.name


def test_rows_and_scatter_work_inside_a_graph_with_a_dynamic_count():
    fn = tf.function(lambda d: ScatterDetectionMasks()([fake_mask_head(DetectionRows()(d)), d]),
                     input_signature=[tf.TensorSpec([None, None, 6], tf.float32)])
    for ids in (CLASS_IDS, [[0, 0]], [[1, 2]]):
        det = make_detections(ids)
        expected = fake_mask_head(det[..., :4]).numpy() * (np.asarray(ids) > 0)[..., None,
                                                                                None, None]
        np.testing.assert_array_equal(fn(tf.constant(det)).numpy(), expected)


# --------------------------------------------------------------------------- whole graphs
class FullMaskConfig(TinyConfig):
    NAME = "masks"
    IMAGES_PER_GPU = 2
    # With these weights the two images have 22 and 5 detections above 0.5 out of 32
    # ROIs: real rows and padding both occur, in different numbers per image.
    DETECTION_MAX_INSTANCES = 32
    DETECTION_MIN_CONFIDENCE = 0.5
    MASK_ON_DETECTIONS = False


class FastMaskConfig(FullMaskConfig):
    MASK_ON_DETECTIONS = True


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("models"))
    models = {}
    for key, cls in (("full", FullMaskConfig), ("fast", FastMaskConfig)):
        models[key] = modellib.MaskRCNN("inference", cls(), model_dir)
        named_weights(models[key].keras_model)
    return models


@pytest.fixture(scope="module")
def images():
    ds = ShapesDataset()
    ds.load_shapes(2, 128, 128, seed=3)
    ds.prepare()
    return [ds.load_image(0), ds.load_image(1)]


@pytest.mark.slow
def test_graph_uses_the_new_layers_only_when_asked(two_models):
    fast_names = {layer.name for layer in two_models["fast"].keras_model.layers}
    full_names = {layer.name for layer in two_models["full"].keras_model.layers}
    assert "detection_masks" in fast_names and "detection_masks" not in full_names
    weighted = {layer.name: [w.shape for w in layer.weights]
                for layer in two_models["full"].keras_model.layers if layer.weights}
    assert weighted == {layer.name: [w.shape for w in layer.weights]
                        for layer in two_models["fast"].keras_model.layers if layer.weights}


@pytest.mark.slow
def test_graph_outputs_equal_the_full_mask_computation(two_models, images):
    molded, metas, _ = two_models["fast"].mold_inputs(images)
    out = {k: modellib.predict_molded(m.keras_model, m.config, molded, metas)
           for k, m in two_models.items()}
    for i in (0, 1, 2, 4, 5, 6):  # everything before and beside the mask head
        np.testing.assert_array_equal(out["fast"][i], out["full"][i])
    detections = out["full"][0]
    real = detections[..., 4] > 0
    counts = real.sum(axis=1)
    assert counts.min() >= 1 and not real.all(), counts  # real rows and padding both occur
    fast_mask, full_mask = out["fast"][3], out["full"][3]
    assert fast_mask.shape == full_mask.shape
    # The same convolutions on the same boxes, in a batch of different size: float round-off.
    np.testing.assert_allclose(fast_mask[real], full_mask[real], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fast_mask[~real], 0)


@pytest.mark.slow
def test_detect_results_are_the_same(two_models, images):
    fast = two_models["fast"].detect(images)
    full = two_models["full"].detect(images)
    for a, b in zip(fast, full, strict=True):
        assert len(a["class_ids"]) > 0
        np.testing.assert_array_equal(a["rois"], b["rois"])
        np.testing.assert_array_equal(a["class_ids"], b["class_ids"])
        np.testing.assert_array_equal(a["scores"], b["scores"])
        assert a["masks"].shape == b["masks"].shape
        assert (a["masks"] != b["masks"]).mean() < 1e-4


class NoDetectionConfig(FastMaskConfig):
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 1.0  # no softmax score of these weights reaches 1


@pytest.mark.slow
def test_zero_detections_run_through_the_graph(tmp_path, images):
    model = modellib.MaskRCNN("inference", NoDetectionConfig(), str(tmp_path))
    named_weights(model.keras_model)
    molded, metas, _ = model.mold_inputs(images[:1])
    outputs = modellib.predict_molded(model.keras_model, model.config, molded, metas)
    assert not (outputs[0][..., 4] > 0).any()
    assert outputs[3].shape == (1, 32, 28, 28, 4)
    np.testing.assert_array_equal(outputs[3], 0)
    r = model.detect(images[:1])[0]
    assert r["rois"].shape == (0, 4) and r["masks"].shape == (128, 128, 0)
