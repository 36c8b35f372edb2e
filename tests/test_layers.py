"""Graph layers: golden cases, numpy parity, get_config round trips, dynamic shapes in models."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling.layers.detection import DetectionLayer
from mrcnn.modeling.layers.detection_target import DetectionTargetLayer
from mrcnn.modeling.layers.misc import (
    AnchorsLayer,
    DetectionBoxes,
    IdentityLayer,
    ImageMetaField,
    NormBoxes,
    TakeFirst,
    TakePositiveRows,
)
from mrcnn.modeling.layers.proposal import ProposalLayer
from mrcnn.modeling.layers.roi_align import PyramidROIAlign, roi_level_graph
from mrcnn.structures import boxes as np_boxes
from mrcnn.structures.image_meta import compose_image_meta

STD = [0.1, 0.1, 0.2, 0.2]


def random_boxes(rng, shape):
    y1x1 = rng.uniform(0, 0.7, size=(*shape, 2))
    hw = rng.uniform(0.02, 0.3, size=(*shape, 2))
    return np.concatenate([y1x1, y1x1 + hw], axis=-1).astype(np.float32)


def meta_batch(batch, image_shape=(64, 64, 3), window=None, num_classes=3):
    window = window or (0, 0, image_shape[0], image_shape[1])
    meta = compose_image_meta(0, image_shape, image_shape, window, 1.0, np.ones(num_classes))
    return np.tile(meta.astype(np.float32), (batch, 1))


def round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def run_in_model(layer, input_specs, arrays):
    """Calls `layer` inside a functional model (dynamic dims as None) with predict."""
    inputs = [keras.Input(shape, dtype=dtype) for shape, dtype in input_specs]
    outputs = layer(inputs if len(inputs) > 1 else inputs[0])
    model = keras.Model(inputs, outputs)
    return model.predict(arrays, batch_size=len(arrays[0]), verbose=0)


# ----------------------------------------------------------------------------- misc layers

def test_anchors_layer_broadcasts_without_weights():
    anchors = np.array([[0, 0, 0.5, 0.5], [0.2, 0.2, 0.9, 0.8]], np.float32)
    layer = AnchorsLayer(anchors, name="anchors")
    out = layer(np.zeros((3, 8, 8, 3), np.float32)).numpy()
    assert out.shape == (3, 2, 4)
    np.testing.assert_array_equal(out[2], anchors)
    assert layer.weights == [] and layer.non_trainable_weights == []
    clone = round_trip(layer)
    np.testing.assert_array_equal(clone.anchors, anchors)
    pred = run_in_model(AnchorsLayer(anchors), [((None, None, 3), "float32")],
                        [np.zeros((5, 4, 6, 3), np.float32)])
    assert pred.shape == (5, 2, 4)


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros(4), [[1, 2]]])
def test_anchors_layer_rejects_bad_shape(bad):
    with pytest.raises(ValueError, match="anchors"):
        AnchorsLayer(bad)


def test_norm_boxes_layer_uses_dynamic_image_shape():
    pixel = np.array([[[0, 0, 21, 11], [10, 5, 20, 10]]], np.float32)
    image = np.zeros((1, 21, 11, 3), np.float32)
    expected = np_boxes.norm_boxes(pixel, (21, 11))
    np.testing.assert_allclose(NormBoxes()([pixel, image]).numpy(), expected, rtol=1e-6)
    pred = run_in_model(NormBoxes(), [((None, 4), "float32"), ((None, None, 3), "float32")],
                        [pixel, image])
    np.testing.assert_allclose(pred, expected, rtol=1e-6)


def test_image_meta_field_and_small_layers():
    meta = meta_batch(2, num_classes=4)
    meta[1, -1] = 0
    layer = round_trip(ImageMetaField("active_class_ids"))
    np.testing.assert_array_equal(layer(meta).numpy(), [[1, 1, 1, 1], [1, 1, 1, 0]])
    assert ImageMetaField("window")(meta).shape == (2, 4)
    with pytest.raises(ValueError, match="bogus"):
        ImageMetaField("bogus")
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 6)
    np.testing.assert_array_equal(IdentityLayer(name="output_rois")(x).numpy(), x)
    np.testing.assert_array_equal(DetectionBoxes()(x).numpy(), x[..., :4])
    first = round_trip(TakeFirst(1))
    np.testing.assert_array_equal(first(x).numpy(), x[:, :1])
    assert first.compute_output_shape((None, None, 6)) == (None, 1, 6)
    with pytest.raises(ValueError, match="count=0"):
        TakeFirst(0)


def test_image_meta_field_shapes_follow_the_layout():
    for field, width in (("image_id", None), ("original_image_shape", 3), ("image_shape", 3),
                         ("window", 4), ("scale", None), ("active_class_ids", 5)):
        layer = ImageMetaField(field)
        expected = (None,) if width is None else (None, width)
        assert layer.compute_output_shape((None, 12 + 5)) == expected, field
        assert tuple(layer(meta_batch(2, num_classes=5)).shape) == (2,) + expected[1:], field
    assert ImageMetaField("active_class_ids").compute_output_shape((None, None)) == (None, None)


# ----------------------------------------------------------------------------- ProposalLayer

def proposal_case():
    anchors = np.array([
        [0.1, 0.1, 0.4, 0.4],
        [0.1, 0.1, 0.4, 0.42],   # IoU 0.09 / 0.096 = 0.9375 with anchor 0
        [0.8, 0.8, 1.0, 1.0],    # moved down by 0.1 * 0.2, then clipped to 1
        [0.5, 0.5, 0.6, 0.6],
        [0.5, 0.1, 0.6, 0.2],
    ], np.float32)
    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.6],      # anchor 3 is cut by pre_nms_limit
                       [0.9, 0.8, 0.7, 0.95, 0.6]], np.float32)  # anchor 4 is cut instead
    probs = np.stack([1 - scores, scores], axis=-1)
    deltas = np.zeros((2, 5, 4), np.float32)
    deltas[:, 2] = [1.0, 0, 0, 0]
    expected = np.array([
        [[0.1, 0.1, 0.4, 0.4], [0.82, 0.8, 1.0, 1.0], [0.5, 0.1, 0.6, 0.2], [0, 0, 0, 0]],
        [[0.5, 0.5, 0.6, 0.6], [0.1, 0.1, 0.4, 0.4], [0.82, 0.8, 1.0, 1.0], [0, 0, 0, 0]],
    ], np.float32)
    return probs, deltas, np.tile(anchors, (2, 1, 1)), expected


def test_proposal_layer_golden():
    probs, deltas, anchors, expected = proposal_case()
    layer = ProposalLayer(4, 0.7, pre_nms_limit=4, rpn_bbox_std_dev=STD, name="ROI")
    out = layer([probs, deltas, anchors]).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_proposal_layer_numpy_parity_and_round_trip():
    rng = np.random.default_rng(7)
    batch, count, limit, keep = 2, 60, 40, 12
    anchors = random_boxes(rng, (batch, count))
    scores = rng.permutation(batch * count).reshape(batch, count).astype(np.float32) / 200
    probs = np.stack([1 - scores, scores], -1)
    deltas = rng.normal(0, 0.5, size=(batch, count, 4)).astype(np.float32)
    layer = ProposalLayer(keep, 0.5, limit, STD)
    out = layer([probs, deltas, anchors]).numpy()
    for b in range(batch):
        ix = np.argsort(-scores[b])[:limit]
        boxes = np_boxes.apply_box_deltas(anchors[b, ix], deltas[b, ix] * np.array(STD))
        boxes = np.clip(boxes, 0, 1)
        kept = np_boxes.non_max_suppression(boxes, scores[b, ix], 0.5)[:keep]
        expected = np.zeros((keep, 4), np.float32)
        expected[:len(kept)] = boxes[kept]
        np.testing.assert_allclose(out[b], expected, atol=1e-5)
    np.testing.assert_allclose(round_trip(layer)([probs, deltas, anchors]).numpy(), out)


def test_proposal_layer_in_model_with_dynamic_anchor_count():
    probs, deltas, anchors, expected = proposal_case()
    specs = [((None, 2), "float32"), ((None, 4), "float32"), ((None, 4), "float32")]
    layer = ProposalLayer(4, 0.7, 4, STD)
    inputs = [keras.Input(s, dtype=d) for s, d in specs]
    model = keras.Model(inputs, layer(inputs))
    assert model.output_shape == (None, 4, 4)
    np.testing.assert_allclose(model.predict([probs, deltas, anchors], verbose=0), expected,
                               atol=1e-6)
    # Fewer anchors than pre_nms_limit and proposal_count, another batch size.
    out = model.predict([probs[:1, :2], deltas[:1, :2], anchors[:1, :2]], verbose=0)
    np.testing.assert_allclose(out, [[[0.1, 0.1, 0.4, 0.4], [0] * 4, [0] * 4, [0] * 4]],
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, word", [
    ({"proposal_count": 0}, "proposal_count"),
    ({"proposal_count": 2.5}, "proposal_count"),
    ({"nms_threshold": 1.5}, "nms_threshold"),
    ({"nms_threshold": 0}, "nms_threshold"),
    ({"pre_nms_limit": -1}, "pre_nms_limit"),
    ({"rpn_bbox_std_dev": [0.1, 0.2]}, "rpn_bbox_std_dev"),
    ({"rpn_bbox_std_dev": [0.1, 0.1, 0.2, -0.2]}, "rpn_bbox_std_dev"),
])
def test_proposal_layer_rejects_bad_arguments(kwargs, word):
    args = {"proposal_count": 4, "nms_threshold": 0.7, "pre_nms_limit": 10,
            "rpn_bbox_std_dev": STD, **kwargs}
    with pytest.raises(ValueError, match=word):
        ProposalLayer(**args)


# ----------------------------------------------------------------------------- PyramidROIAlign

def test_roi_level_golden():
    # In a 1024 x 1024 image: side 224 px -> P4, 112 -> P3, 56 -> P2, 448 -> P5;
    # tiny, empty and huge boxes clip to P2 and P5.
    sides = np.array([224, 112, 56, 448, 20, 1000, 0, 160, 317]) / 1024
    boxes = np.stack([np.zeros_like(sides), np.zeros_like(sides), sides, sides], -1)
    levels = roi_level_graph(boxes, tf.constant([1024.0, 1024.0, 3.0])).numpy()
    # 160 px: log2(160/224) = -0.49 -> 4; 317 px: log2(317/224) = 0.50 -> 5.
    np.testing.assert_array_equal(levels, [4, 3, 2, 5, 2, 5, 2, 4, 5])


def level_feature_maps(batch, channels=2):
    """P2..P5 with value level + 10 * image index everywhere: a crop shows where it came from."""
    maps = []
    for level, size in zip(range(2, 6), (16, 8, 4, 2), strict=True):
        values = level + 10 * np.arange(batch, dtype=np.float32)
        maps.append(np.broadcast_to(values[:, None, None, None],
                                    (batch, size, size, channels)).astype(np.float32))
    return maps


def test_pyramid_roi_align_levels_and_order():
    sides = np.array([[448, 56, 224, 112, 0], [112, 224, 56, 448, 448]]) / 1024
    boxes = np.stack([np.full_like(sides, 0.01), np.full_like(sides, 0.02),
                      0.01 + sides, 0.02 + sides], -1).astype(np.float32)
    boxes[0, 4] = 0  # zero padding: pooled from P2
    meta = meta_batch(2, image_shape=(1024, 1024, 3))
    layer = PyramidROIAlign((3, 2), name="roi_align_classifier")
    out = layer([boxes, meta, *level_feature_maps(2)]).numpy()
    assert out.shape == (2, 5, 3, 2, 2)
    expected = np.array([[5, 2, 4, 3, 2], [13, 14, 12, 15, 15]], np.float32)
    np.testing.assert_allclose(out, np.broadcast_to(expected[..., None, None, None], out.shape),
                               atol=1e-5)


def test_pyramid_roi_align_matches_per_box_crops_in_model():
    rng = np.random.default_rng(3)
    batch, count = 2, 7
    boxes = random_boxes(rng, (batch, count))
    meta = meta_batch(batch, image_shape=(2048, 2048, 3))
    maps = [rng.normal(size=(batch, s, s, 3)).astype(np.float32) for s in (32, 16, 8, 4)]
    layer = PyramidROIAlign((4, 4))
    specs = [((None, 4), "float32"), ((meta.shape[1],), "float32")] + [
        ((None, None, 3), "float32")] * 4
    out = run_in_model(layer, specs, [boxes, meta, *maps])
    levels = roi_level_graph(boxes, tf.constant([2048.0, 2048.0])).numpy()
    assert len(np.unique(levels)) >= 3
    for b in range(batch):
        for n in range(count):
            ref = tf.image.crop_and_resize(maps[levels[b, n] - 2], boxes[b, n][None], [b],
                                           (4, 4)).numpy()[0]
            np.testing.assert_allclose(out[b, n], ref, atol=1e-5)
    clone = round_trip(layer)
    np.testing.assert_allclose(clone([boxes, meta, *maps]).numpy(), out, atol=1e-6)
    # Another ROI count through the same model shape.
    assert run_in_model(PyramidROIAlign((4, 4)), specs,
                        [boxes[:, :3], meta, *maps]).shape == (2, 3, 4, 4, 3)


def test_pyramid_roi_align_keeps_feature_dtype_and_rejects_bad_input():
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3]]], np.float32)
    maps = [tf.cast(m, tf.bfloat16) for m in level_feature_maps(1)]
    out = PyramidROIAlign((2, 2))([boxes, meta_batch(1), *maps])
    assert out.dtype == tf.bfloat16
    with pytest.raises(ValueError, match="pool_shape"):
        PyramidROIAlign((7,))
    with pytest.raises(ValueError, match="pool_shape"):
        PyramidROIAlign((7, 0))
    with pytest.raises(ValueError, match="P2, P3, P4, P5"):
        PyramidROIAlign((2, 2))([boxes, meta_batch(1), *maps[:3]])


# ----------------------------------------------------------------------------- DetectionTargetLayer

def target_case():
    """Two images; image 0 has 2 objects and a crowd region, image 1 has no ground truth."""
    gt_boxes = np.zeros((2, 4, 4), np.float32)
    gt_boxes[0, :3] = [[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.8], [0.0, 0.6, 0.3, 0.9]]
    gt_ids = np.zeros((2, 4), np.int32)
    gt_ids[0, :3] = [1, 2, -1]  # the third is a crowd box
    proposals = np.zeros((2, 10, 4), np.float32)
    proposals[0, :6] = [
        [0.1, 0.1, 0.4, 0.4],     # = gt 0: positive, class 1, zero deltas
        [0.5, 0.5, 0.85, 0.8],    # IoU 0.875 with gt 1: positive, class 2
        [0.6, 0.1, 0.7, 0.2],     # touches nothing: negative
        [0.05, 0.7, 0.2, 0.8],    # inside the crowd box: neither
        [0.7, 0.0, 0.9, 0.2],     # negative
        [0.3, 0.3, 0.6, 0.6],     # IoU < 0.5 with both: negative
    ]
    proposals[1, :3] = proposals[0, :3]
    masks = np.zeros((2, 8, 8, 4), bool)
    masks[0, :, :, :2] = True  # full mini masks
    return proposals, gt_ids, gt_boxes, masks


def key(box):
    return tuple(np.round(np.asarray(box, np.float64), 4).tolist())


def test_detection_target_layer_targets_and_padding():
    proposals, gt_ids, gt_boxes, masks = target_case()
    layer = DetectionTargetLayer(8, 0.5, (4, 4), True, STD, name="proposal_targets")
    rois, ids, deltas, target_masks = [o.numpy() for o in layer(
        [proposals, gt_ids, gt_boxes, masks])]
    assert rois.shape == (2, 8, 4) and ids.shape == (2, 8) and deltas.shape == (2, 8, 4)
    assert target_masks.shape == (2, 8, 4, 4) and ids.dtype == np.int32
    # Image 0: 2 positives first (in random order), then int(2 / 0.5) - 2 = 2 negatives.
    positives = {key(r): (c, d) for r, c, d in zip(rois[0, :2], ids[0, :2],
                                                                   deltas[0, :2], strict=True)}
    assert set(positives) == {(0.1, 0.1, 0.4, 0.4), (0.5, 0.5, 0.85, 0.8)}
    assert positives[(0.1, 0.1, 0.4, 0.4)][0] == 1
    np.testing.assert_allclose(positives[(0.1, 0.1, 0.4, 0.4)][1], 0, atol=1e-6)
    assert positives[(0.5, 0.5, 0.85, 0.8)][0] == 2
    expected = np_boxes.box_refinement(proposals[0, 1:2], gt_boxes[0, 1:2])[0] / STD
    np.testing.assert_allclose(positives[(0.5, 0.5, 0.85, 0.8)][1], expected, rtol=1e-5)
    negative_pool = {key(p) for p in proposals[0, [2, 4, 5]]}
    assert {key(r) for r in rois[0, 2:4]} <= negative_pool
    assert np.all(ids[0, 2:] == 0) and np.all(deltas[0, 2:] == 0)
    np.testing.assert_array_equal(rois[0, 4:], 0)
    np.testing.assert_array_equal(target_masks[0, :2], 1)
    np.testing.assert_array_equal(target_masks[0, 2:], 0)
    # Image 1 has no ground truth: no positives, hence (as in matterport) no negatives.
    for out in (rois, ids, deltas, target_masks):
        np.testing.assert_array_equal(out[1], 0)


def test_detection_target_layer_positive_ratio_and_full_masks():
    rng = np.random.default_rng(5)
    gt_boxes = np.zeros((1, 2, 4), np.float32)
    gt_boxes[0, 0] = [0.25, 0.25, 0.75, 0.75]
    jitter = rng.uniform(-0.02, 0.02, size=(10, 4))
    far = random_boxes(rng, (10,)) * 0.2  # in the top-left corner: IoU < 0.5
    proposals = np.concatenate([gt_boxes[0, :1] + jitter, far])[None].astype(np.float32)
    masks = np.zeros((1, 8, 8, 2), np.float32)
    masks[0, 1:7, 1:7, 0] = 1  # full-image mask covering the box and a margin
    layer = DetectionTargetLayer(10, 0.25, (2, 2), False, STD)
    rois, ids, _, target_masks = [o.numpy() for o in layer(
        [proposals, np.array([[3, 0]], np.int32), gt_boxes, masks])]
    # int(10 * 0.25) = 2 positives, int(2 / 0.25) - 2 = 6 negatives, 2 padding rows.
    np.testing.assert_array_equal(ids[0], [3, 3, 0, 0, 0, 0, 0, 0, 0, 0])
    assert np.all(np.abs(rois[0, :2] - gt_boxes[0, 0]) <= 0.02 + 1e-6)
    assert np.all(rois[0, 2:8].max(axis=1) < 0.3) and np.all(rois[0, 8:] == 0)
    np.testing.assert_array_equal(target_masks[0, :2], 1)


def test_detection_target_layer_in_model_and_round_trip():
    proposals, gt_ids, gt_boxes, masks = target_case()
    layer = DetectionTargetLayer(8, 0.5, (4, 4), True, STD)
    specs = [((None, 4), "float32"), ((None,), "int32"), ((None, 4), "float32"),
             ((8, 8, None), "bool")]
    outs = run_in_model(layer, specs, [proposals, gt_ids, gt_boxes, masks])
    assert [o.shape for o in outs] == [(2, 8, 4), (2, 8), (2, 8, 4), (2, 8, 4, 4)]
    assert sorted(outs[1][0].tolist()) == [0] * 6 + [1, 2]
    clone = round_trip(layer)
    clone_ids = clone([proposals, gt_ids, gt_boxes, masks])[1].numpy()
    assert sorted(clone_ids[0].tolist()) == [0] * 6 + [1, 2]
    with pytest.raises(ValueError, match="roi_positive_ratio"):
        DetectionTargetLayer(8, 1.5, (4, 4), True, STD)
    with pytest.raises(ValueError, match="mask_shape"):
        DetectionTargetLayer(8, 0.5, 28, True, STD)
    with pytest.raises(ValueError, match="train_rois_per_image"):
        DetectionTargetLayer(0, 0.5, (4, 4), True, STD)


# ----------------------------------------------------------------------------- DetectionLayer

def detection_case():
    rois = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.5],
                     [0.3, 0.3, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9]], np.float32)
    probs = np.array([[0.1, 0.8, 0.1], [0.05, 0.75, 0.2], [0.05, 0.05, 0.9],
                      [0.9, 0.05, 0.05], [0.1, 0.18, 0.72]], np.float32)
    deltas = np.zeros((5, 3, 4), np.float32)
    deltas[4, 2] = [1.0, 0, 0, 0]
    background = np.tile([[1.0, 0, 0]], (5, 1)).astype(np.float32)
    # Image 101 px high: the window's y2 = 93 px normalizes to (93 - 1) / 100 = 0.92.
    meta = meta_batch(2, image_shape=(101, 101, 3), window=(0, 0, 93, 101))
    expected = np.zeros((2, 4, 6), np.float32)
    expected[0, :3] = [[0.1, 0.1, 0.5, 0.5, 2, 0.9], [0.1, 0.1, 0.5, 0.5, 1, 0.8],
                       [0.63, 0.6, 0.92, 0.9, 2, 0.72]]
    return (np.stack([rois, rois]), np.stack([probs, background]), np.stack([deltas, deltas]),
            meta, expected)


def test_detection_layer_golden():
    rois, probs, deltas, meta, expected = detection_case()
    layer = DetectionLayer(4, 0.7, 0.3, STD, name="mrcnn_detection")
    np.testing.assert_allclose(layer([rois, probs, deltas, meta]).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(round_trip(layer)([rois, probs, deltas, meta]).numpy(), expected,
                               atol=1e-6)


def test_detection_layer_in_model_with_dynamic_roi_count():
    rois, probs, deltas, meta, expected = detection_case()
    specs = [((None, 4), "float32"), ((None, 3), "float32"), ((None, 3, 4), "float32"),
             ((meta.shape[1],), "float32")]
    layer = DetectionLayer(4, 0.7, 0.3, STD)
    inputs = [keras.Input(s, dtype=d) for s, d in specs]
    model = keras.Model(inputs, layer(inputs))
    assert model.output_shape == (None, 4, 6)
    np.testing.assert_allclose(model.predict([rois, probs, deltas, meta], verbose=0), expected,
                               atol=1e-6)
    out = model.predict([rois[:, 2:3], probs[:, 2:3], deltas[:, 2:3], meta], verbose=0)
    np.testing.assert_allclose(out[0, 0], expected[0, 0], atol=1e-6)
    np.testing.assert_array_equal(out[0, 1:], 0)
    with pytest.raises(ValueError, match="detection_min_confidence"):
        DetectionLayer(4, 1.2, 0.3, STD)
    with pytest.raises(ValueError, match="bbox_std_dev"):
        DetectionLayer(4, 0.7, 0.3, "abc")


def test_geometry_layers_run_in_float32_under_bfloat16_inputs():
    probs, deltas, anchors, expected = proposal_case()
    out = ProposalLayer(4, 0.7, 4, STD, dtype="mixed_bfloat16")(
        [tf.cast(probs, tf.bfloat16), tf.cast(deltas, tf.bfloat16), anchors])
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    rois, probs, deltas, meta, expected = detection_case()
    layer = DetectionLayer(4, 0.7, 0.3, STD, dtype="mixed_bfloat16")
    out = layer([rois, probs, tf.cast(deltas, tf.bfloat16), meta])
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy()[..., :4], expected[..., :4], atol=1e-6)


def test_detection_target_layer_outputs_carry_no_gradient():
    proposals, gt_ids, gt_boxes, masks = target_case()
    proposals = tf.Variable(proposals)
    layer = DetectionTargetLayer(8, 0.5, (4, 4), True, STD)
    with tf.GradientTape() as tape:
        rois, _, deltas, _ = layer([proposals, gt_ids, gt_boxes, masks])
        total = tf.reduce_sum(rois) + tf.reduce_sum(deltas)
    assert tape.gradient(total, proposals) is None


# ---------------------------------------------------------------------- WholeMapConv2D
def test_whole_map_conv_equals_conv2d_on_the_same_weights_forward_and_backward():
    import tensorflow as tf

    from mrcnn.modeling.layers import WholeMapConv2D

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(6, 7, 7, 5)).astype("float32"))
    conv = keras.layers.Conv2D(4, (7, 7), padding="valid", activation="relu")
    fast = WholeMapConv2D(4, (7, 7), padding="valid", activation="relu")
    conv.build(x.shape)
    fast.build(x.shape)
    assert [w.shape for w in fast.weights] == [w.shape for w in conv.weights] == [
        (7, 7, 5, 4), (4,)]
    fast.set_weights([w + 0.1 for w in conv.get_weights()])
    conv.set_weights(fast.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a, b = conv(x), fast(x)
        la, lb = tf.reduce_sum(a * a), tf.reduce_sum(b * b)
    assert b.shape == (6, 1, 1, 4)
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5)
    for ga, gb in zip(tape.gradient(la, [x, *conv.weights]), tape.gradient(lb, [x, *fast.weights]),
                      strict=True):
        np.testing.assert_allclose(gb.numpy(), ga.numpy(), rtol=1e-4, atol=1e-4)


def test_whole_map_conv_falls_back_to_the_convolution_on_a_larger_map():
    from mrcnn.modeling.layers import WholeMapConv2D

    x = np.random.default_rng(1).normal(size=(2, 9, 9, 3)).astype("float32")
    conv = keras.layers.Conv2D(2, (7, 7))
    fast = WholeMapConv2D(2, (7, 7))
    conv.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(conv.get_weights())
    np.testing.assert_allclose(fast(x).numpy(), conv(x).numpy(), rtol=1e-5, atol=1e-5)


def test_whole_map_conv_rejects_what_is_not_a_whole_map_dense_layer_and_serializes():
    from mrcnn.modeling.layers import WholeMapConv2D

    with pytest.raises(ValueError, match="padding='same'"):
        WholeMapConv2D(4, (7, 7), padding="same")
    with pytest.raises(ValueError, match="strides"):
        WholeMapConv2D(4, (7, 7), strides=2)
    layer = WholeMapConv2D(4, (7, 7), name="mrcnn_class_conv1_inner")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is WholeMapConv2D and clone.kernel_size == (7, 7)
    assert keras.saving.get_registered_name(WholeMapConv2D) == "mrcnn>WholeMapConv2D"


def test_take_positive_rows_keeps_the_batch_largest_positive_count():
    rows = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    class_ids = np.array([[2, 1, 0, 0, 0], [3, 1, 2, 0, 0]], dtype=np.int32)
    layer = round_trip(TakePositiveRows(4))
    np.testing.assert_array_equal(layer([rows, class_ids]).numpy(), rows[:, :3])
    # Capped at count; no positive anywhere keeps no row; the ROI axis is dynamic.
    np.testing.assert_array_equal(TakePositiveRows(2)([rows, class_ids]).numpy(), rows[:, :2])
    assert TakePositiveRows(4)([rows, np.zeros_like(class_ids)]).shape == (2, 0, 3)
    assert layer.compute_output_shape([(None, 5, 3), (None, 5)]) == (None, None, 3)
    with pytest.raises(ValueError, match="count=0"):
        TakePositiveRows(0)
