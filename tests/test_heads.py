"""modeling.heads: the RPN model, the classifier and mask heads, and the layer layout
of backbone + FPN + RPN + heads against matterport's checkpoint layouts."""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from shared_fixtures import FIXTURES as SHARED_FIXTURES  # noqa: E402

from mrcnn.modeling.backbone import resnet_graph  # noqa: E402
from mrcnn.modeling.fpn import build_fpn  # noqa: E402
from mrcnn.modeling.heads import (  # noqa: E402
    build_fpn_mask_graph,
    build_rpn_model,
    fpn_classifier_graph,
)
from mrcnn.modeling.layers.batch_norm import BatchNorm  # noqa: E402
from mrcnn.modeling.layers.time_distributed import TimeDistributed  # noqa: E402
from mrcnn.structures.image_meta import compose_image_meta, meta_size  # noqa: E402

FIXTURES = Path(SHARED_FIXTURES)
if not FIXTURES.is_dir():  # a checkout may carry the fixtures beside the tests
    FIXTURES = Path(__file__).resolve().parent / "fixtures"
RNG = np.random.default_rng(0)


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ----------------------------------------------------------------------------------------
# RPN
# ----------------------------------------------------------------------------------------

def test_rpn_model_names_and_shapes():
    model = build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=8)
    assert model.name == "rpn_model"
    assert model.inputs[0].shape[1:] == (None, None, 8)
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert weighted == ["rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"]
    logits, probs, bbox = model(np.zeros((2, 8, 8, 8), "float32"))
    assert logits.shape == (2, 8 * 8 * 3, 2)
    assert probs.shape == (2, 8 * 8 * 3, 2)
    assert bbox.shape == (2, 8 * 8 * 3, 4)
    # Anchor stride 2 halves the grid in both directions.
    strided = build_rpn_model(anchor_stride=2, anchors_per_location=3, depth=8)
    assert strided(np.zeros((1, 8, 8, 8), "float32"))[0].shape == (1, 4 * 4 * 3, 2)


def test_rpn_model_golden_values_and_anchor_order():
    model = build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=4)
    # Zero kernels: every cell outputs the biases, laid out anchor by anchor.
    for name, n in (("rpn_class_raw", 6), ("rpn_bbox_pred", 12)):
        layer = model.get_layer(name)
        layer.set_weights([np.zeros(layer.kernel.shape, "float32"),
                           np.arange(n, dtype="float32")])
    x = RNG.normal(size=(1, 2, 3, 4)).astype("float32")
    logits, probs, bbox = (_np(t) for t in model.predict(x, verbose=0))
    cells = 2 * 3
    np.testing.assert_allclose(logits[0], np.tile([[0, 1], [2, 3], [4, 5]], (cells, 1)))
    np.testing.assert_allclose(bbox[0], np.tile(np.arange(12).reshape(3, 4), (cells, 1)))
    # softmax([a, a + 1]) = [1 / (1 + e), e / (1 + e)]
    e = np.e
    np.testing.assert_allclose(probs[0], np.tile([1 / (1 + e), e / (1 + e)], (3 * cells, 1)),
                               rtol=1e-6)


def test_rpn_model_dynamic_feature_map_size_under_predict():
    model = build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=4)
    for side in (4, 2):
        outputs = model.predict(np.zeros((1, side, side, 4), "float32"), verbose=0)
        assert [o.shape for o in outputs] == [
            (1, side * side * 3, 2), (1, side * side * 3, 2), (1, side * side * 3, 4)]


@pytest.mark.parametrize("kwargs,match", [
    ({"anchor_stride": 0, "anchors_per_location": 3, "depth": 8}, "anchor_stride"),
    ({"anchor_stride": 1, "anchors_per_location": 0, "depth": 8}, "anchors_per_location"),
    ({"anchor_stride": 1, "anchors_per_location": 3, "depth": 2.5}, "depth"),
])
def test_rpn_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_rpn_model(**kwargs)


# ----------------------------------------------------------------------------------------
# Classifier and mask heads on a tiny pyramid
# ----------------------------------------------------------------------------------------

NUM_CLASSES = 4
META_SIZE = meta_size(NUM_CLASSES)
CHANNELS = 8


def _meta(batch, side=64):
    shape = (side, side, 3)
    meta = compose_image_meta(0, shape, shape, (0, 0, side, side), 1.0, np.ones(NUM_CLASSES))
    return np.tile(meta.astype("float32"), (batch, 1))


def _tiny_heads(train_bn=False, mask_pool=7):
    """Heads on P2..P5 of a 64x64 image with CHANNELS channels and a dynamic ROI count."""
    rois = keras.Input(shape=(None, 4), name="input_rois")
    meta = keras.Input(shape=(META_SIZE,), name="input_image_meta")
    maps = [keras.Input(shape=(s, s, CHANNELS), name=f"p{i}")
            for i, s in zip(range(2, 6), (16, 8, 4, 2), strict=True)]
    logits, probs, bbox = fpn_classifier_graph(rois, maps, meta, pool_size=7,
                                               num_classes=NUM_CLASSES, train_bn=train_bn,
                                               fc_layers_size=16)
    masks = build_fpn_mask_graph(rois, maps, meta, pool_size=mask_pool,
                                 num_classes=NUM_CLASSES, train_bn=train_bn)
    return keras.Model([rois, meta, *maps], [logits, probs, bbox, masks])


def _inputs(batch, num_rois):
    y1x1 = RNG.uniform(0.0, 0.5, size=(batch, num_rois, 2))
    hw = RNG.uniform(0.1, 0.5, size=(batch, num_rois, 2))
    rois = np.concatenate([y1x1, y1x1 + hw], axis=-1).astype("float32")
    maps = [RNG.normal(size=(batch, s, s, CHANNELS)).astype("float32") for s in (16, 8, 4, 2)]
    return [rois, _meta(batch), *maps]


def _expected_shapes(batch, n, mask_pool=7):
    return [(batch, n, NUM_CLASSES), (batch, n, NUM_CLASSES), (batch, n, NUM_CLASSES, 4),
            (batch, n, 2 * mask_pool, 2 * mask_pool, NUM_CLASSES)]


def test_heads_symbolic_shapes_with_dynamic_roi_count():
    model = _tiny_heads()
    assert [tuple(o.shape) for o in model.outputs] == [
        (None, None, NUM_CLASSES), (None, None, NUM_CLASSES), (None, None, NUM_CLASSES, 4),
        (None, None, 14, 14, NUM_CLASSES)]


def test_heads_eager_and_predict_with_changing_roi_count():
    model = _tiny_heads()
    eager = [_np(t) for t in model(_inputs(2, 3))]
    assert [o.shape for o in eager] == _expected_shapes(2, 3)
    for n in (3, 5, 1):
        outputs = model.predict(_inputs(2, n), verbose=0)
        assert [o.shape for o in outputs] == _expected_shapes(2, n)
        logits, probs, _, masks = outputs
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        np.testing.assert_allclose(probs, e / e.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6)
        assert ((masks >= 0) & (masks <= 1)).all()


def test_heads_predict_same_per_roi_results_whatever_the_roi_count():
    # Frozen BN makes every ROI independent: the first ROIs give the same outputs alone.
    model = _tiny_heads(train_bn=False)
    inputs = _inputs(1, 4)
    full = model.predict(inputs, verbose=0)
    part = model.predict([inputs[0][:, :2]] + inputs[1:], verbose=0)
    for a, b in zip(full, part, strict=True):
        np.testing.assert_allclose(a[:, :2], b, rtol=1e-4, atol=1e-5)


def test_mask_head_accepts_zero_rois():
    model = _tiny_heads()
    outputs = model.predict(_inputs(1, 0), verbose=0)
    assert [o.shape for o in outputs] == _expected_shapes(1, 0)


def test_mrcnn_bbox_is_bbox_fc_split_per_class():
    model = _tiny_heads()
    probe = keras.Model(model.inputs, [model.get_layer("mrcnn_bbox_fc").output,
                                       model.get_layer("mrcnn_bbox").output])
    fc, bbox = probe.predict(_inputs(2, 3), verbose=0)
    assert fc.shape == (2, 3, NUM_CLASSES * 4)
    for c in range(NUM_CLASSES):
        np.testing.assert_array_equal(bbox[:, :, c], fc[:, :, 4 * c:4 * c + 4])


@pytest.mark.parametrize("train_bn", [True, False])
def test_heads_layers_are_folding_time_distributed_with_inner_names(train_bn):
    model = _tiny_heads(train_bn=train_bn)
    wrapped = ["mrcnn_class_conv1", "mrcnn_class_bn1", "mrcnn_class_conv2", "mrcnn_class_bn2",
               "mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox_fc", "mrcnn_mask_deconv",
               "mrcnn_mask"] + [f"mrcnn_mask_{k}{i}" for k in ("conv", "bn") for i in range(1, 5)]
    for name in wrapped:
        layer = model.get_layer(name)
        assert isinstance(layer, TimeDistributed), name
        assert layer.layer.name == f"{name}_inner"
        if isinstance(layer.layer, BatchNorm):
            assert layer.layer.train_bn is train_bn
    assert model.get_layer("mrcnn_class_conv1").layer.kernel_size == (7, 7)
    assert model.get_layer("mrcnn_class_conv1").layer.padding == "valid"
    deconv = model.get_layer("mrcnn_mask_deconv").layer
    assert isinstance(deconv, keras.layers.Conv2DTranspose) and deconv.strides == (2, 2)
    for name in ("roi_align_classifier", "roi_align_mask", "pool_squeeze", "mrcnn_bbox"):
        model.get_layer(name)


def test_heads_under_mixed_bfloat16_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _tiny_heads(mask_pool=4)
        outputs = model.predict(_inputs(1, 2), verbose=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert [o.shape for o in outputs] == _expected_shapes(1, 2, mask_pool=4)
    assert all(np.isfinite(np.asarray(o, "float32")).all() for o in outputs)


@pytest.mark.parametrize("kwargs,match", [
    ({"pool_size": 0}, "pool_size"),
    ({"num_classes": 0}, "num_classes"),
    ({"fc_layers_size": -1}, "fc_layers_size"),
    ({"drop_map": True}, "four pyramid levels"),
])
def test_heads_reject_bad_arguments(kwargs, match):
    rois = keras.Input(shape=(None, 4))
    meta = keras.Input(shape=(META_SIZE,))
    maps = [keras.Input(shape=(s, s, CHANNELS)) for s in (16, 8, 4, 2)]
    if kwargs.pop("drop_map", False):
        maps = maps[:3]
    args = {"pool_size": 7, "num_classes": NUM_CLASSES, **kwargs}
    with pytest.raises(ValueError, match=match):
        fpn_classifier_graph(rois, maps, meta, **args)
    args.pop("fc_layers_size", None)
    if "fc_layers_size" not in kwargs:
        with pytest.raises(ValueError, match=match):
            build_fpn_mask_graph(rois, maps, meta, **args)


# ----------------------------------------------------------------------------------------
# Weighted-layer layout against matterport's checkpoints
# ----------------------------------------------------------------------------------------

def _build_network(architecture, num_classes):
    """Backbone + FPN + RPN + heads with matterport's settings, as one model."""
    image = keras.Input(shape=(64, 64, 3), name="input_image")
    meta = keras.Input(shape=(12 + num_classes,), name="input_image_meta")
    rois = keras.Input(shape=(None, 4), name="input_rois")
    _, c2, c3, c4, c5 = resnet_graph(image, architecture, stage5=True, train_bn=False)
    p2, p3, p4, p5, p6 = build_fpn(c2, c3, c4, c5, top_down_pyramid_size=256)
    rpn = build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=256)
    rpn_outputs = [rpn(p) for p in (p2, p3, p4, p5, p6)]
    maps = [p2, p3, p4, p5]
    heads = fpn_classifier_graph(rois, maps, meta, pool_size=7, num_classes=num_classes,
                                 train_bn=False, fc_layers_size=1024)
    mask = build_fpn_mask_graph(rois, maps, meta, pool_size=14, num_classes=num_classes,
                                train_bn=False)
    outputs = [o for level in rpn_outputs for o in level] + list(heads) + [mask]
    return keras.Model([image, meta, rois], outputs)


def _our_layout(model):
    """{layer name: [(weight basename, shape)]} for every weighted top-level layer."""
    layout = {}
    for layer in model.layers:
        if layer.weights:
            assert layer.name not in layout, f"duplicate layer name {layer.name}"
            layout[layer.name] = [(w.path.split("/")[-1], tuple(w.shape))
                                  for w in layer.weights]
    return layout


def _fixture_layout(filename):
    with open(FIXTURES / filename) as f:
        data = json.load(f)
    layout = {}
    for layer in data["layers"]:
        if layer["weights"]:
            layout[layer["name"]] = [(w["name"].split("/")[-1].split(":")[0], tuple(w["shape"]))
                                     for w in layer["weights"]]
    return layout


def _assert_layout_matches(architecture, num_classes, filename):
    model = _build_network(architecture, num_classes)
    ours, theirs = _our_layout(model), _fixture_layout(filename)
    assert sorted(set(theirs) - set(ours)) == []  # missing layers
    assert sorted(set(ours) - set(theirs)) == []  # extra weighted layers
    for name, weights in theirs.items():
        assert ours[name] == weights, name
    # The nested RPN model keeps matterport's inner layer order.
    rpn = model.get_layer("rpn_model")
    assert [layer.name for layer in rpn.layers if layer.weights] == [
        "rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"]


def test_layout_matches_matterport_shapes_resnet50():
    _assert_layout_matches("resnet50", 4, "matterport_shapes_r50_layout.json")


def test_layout_matches_matterport_coco_resnet101():
    # Builds (never runs) the COCO-size network: about 2-3 s here, so not marked slow.
    _assert_layout_matches("resnet101", 81, "matterport_coco_layout.json")
