"""The predictor: mold_inputs / unmold_detections golden cases computed by hand, and the
detect paths around a stub graph (numpy only)."""

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.engine import predictor
from mrcnn.engine.predictor import check_images, mold_inputs, unmold_detections

MEAN = np.array([123.7, 116.8, 103.9])


class SquareConfig(Config):
    NAME = "sq"
    NUM_CLASSES = 3
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    IMAGE_RESIZE_MODE = "square"


class NoResizeConfig(SquareConfig):
    IMAGE_RESIZE_MODE = "none"


def meta_fields(meta):
    """matterport's meta layout, read by index: id, original shape, shape, window, scale."""
    return {"original": tuple(meta[1:4]), "shape": tuple(meta[4:7]),
            "window": tuple(meta[7:11]), "scale": meta[11], "active": meta[12:]}


def norm(box, shape):
    """matterport's pixel -> normalized: (y1, x1, y2 - 1, x2 - 1) / (H - 1, W - 1)."""
    h, w = shape
    y1, x1, y2, x2 = box
    return [y1 / (h - 1), x1 / (w - 1), (y2 - 1) / (h - 1), (x2 - 1) / (w - 1)]


def detections_array(rows, n=5):
    out = np.zeros((n, 6), np.float32)
    out[:len(rows)] = rows
    return out


# --------------------------------------------------------------------------- mold_inputs
def test_mold_inputs_square_mode_window_meta_and_pixels():
    config = SquareConfig()
    # 64 x 128: min_dim would scale by 2 but max_dim caps the long side at 128 -> scale 1,
    # padded by 32 rows top and bottom. 32 x 32: scaled by 4 to fill 128 x 128.
    wide = np.full((64, 128, 3), 200, np.uint8)
    small = np.full((32, 32, 3), 50, np.uint8)
    molded, metas, windows = mold_inputs([wide, small], config)
    assert molded.shape == (2, 128, 128, 3) and molded.dtype == np.float32
    np.testing.assert_array_equal(windows, [[32, 0, 96, 128], [0, 0, 128, 128]])
    m0, m1 = meta_fields(metas[0]), meta_fields(metas[1])
    assert m0["original"] == (64, 128, 3) and m0["shape"] == (128, 128, 3)
    assert m0["window"] == (32, 0, 96, 128) and m0["scale"] == 1
    assert m1["original"] == (32, 32, 3) and m1["window"] == (0, 0, 128, 128)
    assert m1["scale"] == 4
    assert metas.shape == (2, 12 + 3) and np.all(m0["active"] == 0)
    # Inside the window: pixel - MEAN_PIXEL.
    np.testing.assert_allclose(molded[0, 32:96], np.broadcast_to(200 - MEAN, (64, 128, 3)),
                               rtol=1e-6)
    np.testing.assert_allclose(molded[1], np.broadcast_to(50 - MEAN, (128, 128, 3)), rtol=1e-6)
    # Square-mode padding is black before molding, as in matterport: -MEAN_PIXEL.
    np.testing.assert_allclose(molded[0, :32], np.broadcast_to(-MEAN, (32, 128, 3)), rtol=1e-6)


def test_mold_inputs_pads_mixed_sizes_to_the_largest():
    config = NoResizeConfig()
    a = np.full((40, 60, 3), 10, np.uint8)
    b = np.full((70, 30, 3), 20, np.uint8)
    molded, metas, windows = mold_inputs([a, b], config)
    assert molded.shape == (2, 70, 60, 3)
    np.testing.assert_array_equal(windows, [[0, 0, 40, 60], [0, 0, 70, 30]])
    for meta, original, window in zip(metas, [(40, 60, 3), (70, 30, 3)], windows):
        f = meta_fields(meta)
        assert f["original"] == original
        assert f["shape"] == (70, 60, 3)  # the padded input tensor's shape
        assert f["window"] == tuple(window) and f["scale"] == 1
    np.testing.assert_allclose(molded[0, :40, :60], np.broadcast_to(10 - MEAN, (40, 60, 3)),
                               rtol=1e-6)
    np.testing.assert_allclose(molded[1, :70, :30], np.broadcast_to(20 - MEAN, (70, 30, 3)),
                               rtol=1e-6)
    # Everything outside each image is black padding, molded like the training data: -MEAN.
    np.testing.assert_allclose(molded[0, 40:], np.broadcast_to(-MEAN, (30, 60, 3)), rtol=1e-6)
    np.testing.assert_allclose(molded[1, :, 30:], np.broadcast_to(-MEAN, (70, 30, 3)),
                               rtol=1e-6)


def test_mold_inputs_accepts_grayscale_for_one_channel():
    config = NoResizeConfig()
    config.IMAGE_CHANNEL_COUNT = 1
    config.MEAN_PIXEL = np.array([100.0])
    molded, metas, _ = mold_inputs([np.full((8, 8), 150, np.uint8)], config)
    assert molded.shape == (1, 8, 8, 1)
    np.testing.assert_allclose(molded, 50.0)
    assert meta_fields(metas[0])["original"] == (8, 8, 1)


@pytest.mark.parametrize("images, match", [
    ([], "non-empty"),
    (None, "non-empty"),
    ([np.zeros((8, 8, 4))], r"image 0 has shape \(8, 8, 4\)"),
    ([np.zeros((8, 8, 3)), np.zeros((8, 8))], "image 1"),
    ([np.zeros((0, 8, 3))], "empty"),
    ([np.zeros((2, 8, 8, 3))], "image 0"),
])
def test_bad_images_raise_value_error(images, match):
    with pytest.raises(ValueError, match=match):
        check_images(images, 3)
    with pytest.raises(ValueError, match=match):
        mold_inputs(images, SquareConfig())


# --------------------------------------------------------------------------- unmold_detections
def test_unmold_maps_boxes_back_to_original_pixels_square_mode():
    # Original 64 x 128, input 128 x 128, window (32, 0, 96, 128), scale 1: a box at input
    # pixels (40, 16, 72, 80) is (8, 16, 40, 80) in the original image.
    image_shape = (128, 128, 3)
    window = (32, 0, 96, 128)
    det = detections_array([
        norm((40, 16, 72, 80), (128, 128)) + [2, 0.9],
        norm((50, 20, 50, 40), (128, 128)) + [1, 0.8],  # zero height: dropped
    ])
    masks = np.zeros((5, 6, 6, 3), np.float32)
    masks[0, :, :, 2] = 1.0  # the mask of detection 0's class: the whole box
    masks[0, :, :, 1] = 0.0
    boxes, class_ids, scores, full = unmold_detections(det, masks, (64, 128, 3), image_shape,
                                                       window)
    np.testing.assert_array_equal(boxes, [[8, 16, 40, 80]])
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(class_ids, [2])
    np.testing.assert_allclose(scores, [0.9])
    assert full.shape == (64, 128, 1) and full.dtype == bool
    expected = np.zeros((64, 128), bool)
    expected[8:40, 16:80] = True
    np.testing.assert_array_equal(full[..., 0], expected)


def test_unmold_uses_each_images_window_in_a_padded_batch():
    # Image 40 x 60 inside a 70 x 60 padded input (none mode): window (0, 0, 40, 60).
    det = detections_array([norm((10, 5, 30, 45), (70, 60)) + [1, 0.75],
                            norm((0, 0, 40, 60), (70, 60)) + [3, 0.5]])
    masks = np.zeros((5, 4, 4, 4), np.float32)
    masks[0, :, :, 1] = 1.0
    masks[1, :2, :, 3] = 1.0  # top half of the box
    boxes, class_ids, scores, full = unmold_detections(det, masks, (40, 60, 3), (70, 60, 3),
                                                       (0, 0, 40, 60))
    np.testing.assert_array_equal(boxes, [[10, 5, 30, 45], [0, 0, 40, 60]])
    np.testing.assert_array_equal(class_ids, [1, 3])
    np.testing.assert_allclose(scores, [0.75, 0.5])
    assert full.shape == (40, 60, 2)
    assert full[..., 0].sum() == 20 * 40 and full[10:30, 5:45, 0].all()
    assert full[:20, :, 1].all() and not full[20:, :, 1].any()


def test_unmold_scaled_window():
    # Original 32 x 32 scaled by 4 into 128 x 128, input box (8, 16, 40, 64). matterport's
    # normalized convention divides by (size - 1) and shifts y2/x2 by one pixel, so a scaled
    # box maps to y1 = round(8 * 31 / 127) = 2, x1 = round(16 * 31 / 127) = 4,
    # y2 = round(39 * 31 / 127) + 1 = 11, x2 = round(63 * 31 / 127) + 1 = 16.
    det = detections_array([norm((8, 16, 40, 64), (128, 128)) + [1, 0.6]])
    masks = np.ones((5, 4, 4, 2), np.float32)
    boxes, _, _, full = unmold_detections(det, masks, (32, 32, 3), (128, 128, 3),
                                          (0, 0, 128, 128))
    np.testing.assert_array_equal(boxes, [[2, 4, 11, 16]])
    assert full.shape == (32, 32, 1) and full.sum() == 9 * 12


def test_unmold_empty_detections():
    det = np.zeros((5, 6), np.float32)
    boxes, class_ids, scores, full = unmold_detections(
        det, np.zeros((5, 4, 4, 3), np.float32), (64, 128, 3), (128, 128, 3), (32, 0, 96, 128))
    assert boxes.shape == (0, 4) and class_ids.shape == (0,) and scores.shape == (0,)
    assert full.shape == (64, 128, 0) and full.dtype == bool


def test_mold_then_unmold_round_trip_mixed_sizes():
    config = SquareConfig()
    images = [np.zeros((64, 128, 3), np.uint8), np.zeros((100, 50, 3), np.uint8)]
    molded, metas, windows = mold_inputs(images, config)
    # A box covering each whole original image comes back as exactly that box.
    for image, window in zip(images, windows):
        h, w = image.shape[:2]
        det = detections_array([norm(tuple(window), molded.shape[1:3]) + [1, 0.9]])
        masks = np.ones((5, 4, 4, 3), np.float32)
        boxes, _, _, full = unmold_detections(det, masks, image.shape, molded.shape[1:],
                                              window)
        np.testing.assert_array_equal(boxes, [[0, 0, h, w]])
        assert full.shape == (h, w, 1) and full.all()
    # 100 x 50 in square mode: scale min(128/50, 128/100) = 1.28 -> 128 x 64, padded 32 + 32.
    np.testing.assert_array_equal(windows[1], [0, 32, 128, 96])
    assert meta_fields(metas[1])["scale"] == pytest.approx(1.28)


# --------------------------------------------------------------------------- detect paths
class StubGraph:
    """Stands in for an inference graph: records its inputs, returns fixed outputs."""

    def __init__(self, detections, mrcnn_mask):
        self.outputs = [detections, None, None, mrcnn_mask, None, None, None]
        self.inputs = None

    def predict_on_batch(self, inputs):
        self.inputs = inputs
        return self.outputs


def _two_image_outputs(shape):
    det = np.stack([detections_array([norm((40, 16, 72, 80), shape) + [2, 0.9]]),
                    # inside image 1's window (0, 32, 128, 96)
                    detections_array([norm((0, 32, 128, 64), shape) + [1, 0.5],
                                      norm((10, 40, 20, 50), shape) + [2, 0.4]])])
    masks = np.zeros((2, 5, 4, 4, 3), np.float32)
    masks[0, 0, :, :, 2] = 1.0
    masks[1, 0, :2, :, 1] = 1.0
    masks[1, 1, :, :, 2] = 1.0
    return det, masks


def test_detect_images_unmolds_each_image_with_its_own_window():
    config = SquareConfig()
    images = [np.zeros((64, 128, 3), np.uint8), np.zeros((100, 50, 3), np.uint8)]
    det, masks = _two_image_outputs((128, 128))
    graph = StubGraph(det, masks)
    results = predictor.detect_images(graph, config, images)
    molded, metas, windows = mold_inputs(images, config)
    np.testing.assert_array_equal(graph.inputs[0], molded)
    np.testing.assert_array_equal(graph.inputs[1], metas)
    assert graph.inputs[2].shape[0] == 2  # the anchors, broadcast to the batch
    for i, (image, r) in enumerate(zip(images, results)):
        expected = unmold_detections(det[i], masks[i], image.shape, molded[i].shape,
                                     windows[i])
        for key, value in zip(("rois", "class_ids", "scores", "masks"), expected):
            np.testing.assert_array_equal(r[key], value, err_msg=key)
    # Image 0: the golden box of test_unmold_maps_boxes_back_to_original_pixels_square_mode.
    np.testing.assert_array_equal(results[0]["rois"], [[8, 16, 40, 80]])
    assert results[1]["masks"].shape[:2] == (100, 50)


def test_detect_molded_reads_windows_from_the_metas():
    # Molded inputs (e.g. load_image_gt + mold_image): results stay in molded coordinates,
    # each image cut to the window its meta records.
    config = SquareConfig()
    images = [np.zeros((64, 128, 3), np.uint8), np.zeros((100, 50, 3), np.uint8)]
    molded, metas, windows = mold_inputs(images, config)
    det, masks = _two_image_outputs((128, 128))
    results = predictor.detect_molded(StubGraph(det, masks), config, molded, metas)
    assert len(results) == 2
    for i, r in enumerate(results):
        expected = unmold_detections(det[i], masks[i], molded[i].shape, molded[i].shape,
                                     windows[i])
        for key, value in zip(("rois", "class_ids", "scores", "masks"), expected):
            np.testing.assert_array_equal(r[key], value, err_msg=key)
        assert r["masks"].shape[:2] == (128, 128)
    # Image 0's window starts 32 rows down: molded box rows 40..72 are window rows 8..40,
    # and the window (64 of 128 rows) maps onto the whole 128-row molded frame: x 2.
    np.testing.assert_array_equal(results[0]["rois"], [[16, 16, 80, 80]])
