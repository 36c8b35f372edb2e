"""Tests for mrcnn.data.generator: load_image_gt checks and the PyDataset batches."""

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.data.augment import import_imgaug
from mrcnn.data.dataset import Dataset
from mrcnn.data.generator import DataGenerator, data_generator
from mrcnn.data.ground_truth import load_image_gt
from samples.shapes.shapes import ShapesConfig, ShapesDataset

iaa = import_imgaug().augmenters


class TinyConfig(Config):
    NAME = "tiny"
    BACKBONE = "resnet50"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    TRAIN_ROIS_PER_IMAGE = 8
    MAX_GT_INSTANCES = 5
    MINI_MASK_SHAPE = (14, 14)


def make_config(**overrides):
    return type("Custom", (TinyConfig,), overrides)()


class ToyDataset(Dataset):
    """White boxes on black: image_info["boxes"] = [(y1, x1, y2, x2, class_id), ...]."""

    def setup(self, specs, source="a", size=(64, 64)):
        self.add_class("a", 1, "one")
        self.add_class("a", 2, "two")
        self.add_class("b", 1, "bee")
        for boxes in specs:
            self.add_image(source, image_id=len(self.image_info), path=f"/toy/{source}.png",
                           boxes=boxes, size=size)
        return self

    def load_image(self, image_id):
        info = self.image_info[image_id]
        image = np.zeros(info["size"] + (3,), dtype=np.uint8)
        for y1, x1, y2, x2, _ in info["boxes"]:
            image[y1:y2, x1:x2] = 255
        return image

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        masks = np.zeros(info["size"] + (len(info["boxes"]),), dtype=bool)
        for i, (y1, x1, y2, x2, _) in enumerate(info["boxes"]):
            masks[y1:y2, x1:x2, i] = True
        return masks, np.array([b[4] for b in info["boxes"]], dtype=np.int32)


def toy(specs, **kwargs):
    ds = ToyDataset().setup(specs, **kwargs)
    ds.prepare()
    return ds


def numbered(n):
    """n images, image i has one box whose left edge is at x = 2 * i (to recognise it)."""
    return toy([[(10, 2 * i, 30, 2 * i + 20, 1)] for i in range(n)])


# ---------------------------------------------------------------------------- load_image_gt
def test_load_image_gt_golden():
    ds = toy([[(10, 5, 30, 20, 1), (40, 40, 50, 60, 2)]])
    config = make_config()
    image, meta, class_ids, bbox, mask = load_image_gt(ds, config, 0)
    assert image.shape == (64, 64, 3) and mask.shape == (64, 64, 2) and mask.dtype == np.bool_
    np.testing.assert_array_equal(class_ids, [1, 2])
    np.testing.assert_array_equal(bbox, [[10, 5, 30, 20], [40, 40, 50, 60]])
    # id, original shape, shape, window, scale, active classes (source "a": BG, one, two)
    np.testing.assert_array_equal(meta, [0, 64, 64, 3, 64, 64, 3, 0, 0, 64, 64, 1, 1, 1, 1, 0])
    _, _, _, _, mini = load_image_gt(ds, config, 0, use_mini_mask=True)
    assert mini.shape == (14, 14, 2) and mini.all()  # boxes are full rectangles


def test_active_class_ids_follow_the_source():
    ds = ToyDataset().setup([[(10, 5, 30, 20, 3)]], source="b")
    ds.prepare()
    _, meta, *_ = load_image_gt(ds, make_config(), 0)
    np.testing.assert_array_equal(meta[-4:], [1, 0, 0, 1])


def test_augmentation_keeps_image_and_masks_aligned():
    ds = toy([[(10, 5, 30, 20, 1)]])
    aug = iaa.Sequential([iaa.Fliplr(1.0), iaa.Multiply(0.9)])
    image, _, _, bbox, mask = load_image_gt(ds, make_config(), 0, augmentation=aug, rng=0)
    np.testing.assert_array_equal(mask[..., 0], image[..., 0] > 100)
    np.testing.assert_array_equal(bbox, [[10, 44, 30, 59]])


def test_vanished_instances_are_dropped():
    ds = toy([[(10, 50, 30, 60, 1), (10, 5, 30, 20, 2)]])
    push = iaa.Affine(translate_px={"x": 20})  # the first box leaves the image
    _, _, class_ids, bbox, mask = load_image_gt(ds, make_config(), 0, augmentation=push, rng=0)
    np.testing.assert_array_equal(class_ids, [2])
    np.testing.assert_array_equal(bbox, [[10, 25, 30, 40]])
    assert mask.shape == (64, 64, 1)


def test_augmentation_that_resizes_is_an_error():
    ds = toy([[(10, 5, 30, 20, 1)]])
    grow = iaa.CropAndPad(px=(4, 0, 0, 0), keep_size=False)
    with pytest.raises(ValueError, match=r"image 0 .*toy/a\.png.*changed the image shape"):
        load_image_gt(ds, make_config(), 0, augmentation=grow, rng=0)


class BrokenDataset(ToyDataset):
    def __init__(self, fault):
        super().__init__()
        self.fault = fault

    def load_image(self, image_id):
        image = super().load_image(image_id)
        return image[..., :1] if self.fault == "channels" else image

    def load_mask(self, image_id):
        mask, class_ids = super().load_mask(image_id)
        if self.fault == "lengths":
            return mask, np.array([1, 1], np.int32)
        if self.fault == "size":
            return mask[:32], class_ids
        if self.fault in ("unknown", "zero"):
            return mask, np.array([7 if self.fault == "unknown" else 0], np.int32)
        return mask, class_ids


@pytest.mark.parametrize("fault, message", [
    ("lengths", "1 masks but 2 class ids"),
    ("size", r"masks of shape \(32, 64, 1\), expected \[64, 64"),
    ("channels", r"shape \(64, 64, 1\), expected \[height, width, 3\]"),
    ("unknown", r"class id\(s\) \[7\] not in the dataset"),
    ("zero", r"class id\(s\) \[0\] not in the dataset"),
])
def test_bad_inputs_name_the_image(fault, message):
    ds = BrokenDataset(fault).setup([[(10, 5, 30, 20, 1)]])
    ds.prepare()
    with pytest.raises(ValueError, match=r"image 0 \(path '/toy/a\.png'\).*" + message):
        load_image_gt(ds, make_config(), 0)


# ---------------------------------------------------------------------------- DataGenerator
def test_shapes_batch_shapes_and_dtypes():
    ds = ShapesDataset()
    ds.load_shapes(10, 128, 128, seed=3)
    ds.prepare()
    config = ShapesConfig()
    gen = DataGenerator(ds, config, seed=1)
    assert len(gen) == 2  # ceil(10 / 8)
    batch = gen[0]
    assert isinstance(batch, tuple) and len(batch) == 1 and isinstance(batch[0], tuple)
    images, meta, rpn_match, rpn_bbox, class_ids, boxes, masks = batch[0]
    num_anchors = sum(3 * (128 // s) ** 2 for s in (4, 8, 16, 32, 64))
    expected = [(images, (8, 128, 128, 3), np.float32), (meta, (8, 16), np.float32),
                (rpn_match, (8, num_anchors, 1), np.int32), (rpn_bbox, (8, 256, 4), np.float32),
                (class_ids, (8, 100), np.int32), (boxes, (8, 100, 4), np.int32),
                (masks, (8, 56, 56, 100), np.bool_)]
    for array, shape, dtype in expected:
        assert array.shape == shape and array.dtype == dtype
    for b in range(8):
        count = int(np.count_nonzero(class_ids[b]))
        assert 1 <= count <= 4
        assert not boxes[b, count:].any() and not masks[b, ..., count:].any()
        assert masks[b, ..., :count].any(axis=(0, 1)).all()
        # molded = image - MEAN_PIXEL; the image is the drawn shapes image
        drawn = ds.load_image(int(meta[b, 0])).astype(np.float32)
        np.testing.assert_allclose(images[b] + config.MEAN_PIXEL, drawn, atol=1e-4)
    assert set(np.unique(rpn_match)) <= {-1, 0, 1}


def _ids(batch):
    return batch[0][1][:, 0].astype(int).tolist()


def test_batch_index_order_and_wraparound():
    gen = DataGenerator(numbered(5), make_config(), shuffle=False, seed=0, steps=6)
    assert len(gen) == 6
    assert [_ids(gen[i]) for i in range(6)] == [[0, 1], [2, 3], [4, 0], [1, 2], [3, 4], [0, 1]]
    boxes = gen[1][0][5]
    np.testing.assert_array_equal(boxes[:, 0], [[10, 4, 30, 24], [10, 6, 30, 26]])


def test_batches_reproducible_and_reshuffled():
    config = make_config()
    aug = iaa.Affine(rotate=(-20, 20))
    gen = DataGenerator(numbered(9), config, seed=5, augmentation=aug)
    twin = DataGenerator(numbered(9), config, seed=5, augmentation=aug)
    other = DataGenerator(numbered(9), config, seed=6, augmentation=aug)
    epoch0 = [gen[i] for i in range(len(gen))]
    for i in (3, 0):  # any order, same result
        for a, b in zip(gen[i][0], twin[i][0], strict=True):
            np.testing.assert_array_equal(a, b)
    ids0 = [_ids(b) for b in epoch0]
    assert sorted(sum(ids0, [])[:9]) == list(range(9))  # one pass: each image once
    assert ids0 != [_ids(other[i]) for i in range(len(other))]
    gen.on_epoch_end()
    assert gen.epoch == 1
    assert ids0 != [_ids(gen[i]) for i in range(len(gen))]


def test_items_get_different_augmentations():
    # One image (box rows 20..39, columns 5..24 of 64), repeated by wrap-around, flipped
    # left-right with probability 0.5 per item: a flip maps columns x1..x2 to 64 - x2..64 - x1.
    ds = toy([[(20, 5, 40, 25, 1)]])
    gen = DataGenerator(ds, make_config(USE_MINI_MASK=False), seed=0, steps=4,
                        augmentation=iaa.Fliplr(0.5))
    seen = []
    for i in range(4):
        images, meta, _, _, _, boxes, masks = gen[i][0]
        for k in range(2):
            box = tuple(boxes[k, 0])
            assert box in {(20, 5, 40, 25), (20, 39, 40, 59)}, box
            seen.append(box)
            # The image, its mask and its box moved together.
            drawn = images[k, ..., 0] + make_config().MEAN_PIXEL[0] > 100
            expected = np.zeros((64, 64), bool)
            expected[box[0]:box[2], box[1]:box[3]] = True
            np.testing.assert_array_equal(drawn, expected)
            np.testing.assert_array_equal(masks[k, :, :, 0], expected)
            # Item (i, k) draws from the stream [seed, epoch, i, k] (the class's contract).
            _, _, _, alone, _ = load_image_gt(ds, make_config(), 0, augmentation=iaa.Fliplr(0.5),
                                              rng=np.random.default_rng([0, 0, i, k]))
            np.testing.assert_array_equal(alone[0], box)
    assert set(seen) == {(20, 5, 40, 25), (20, 39, 40, 59)}  # both outcomes occur


def test_seed_from_config():
    config = make_config(RANDOM_SEED=11)
    a = DataGenerator(numbered(8), config)
    b = DataGenerator(numbered(8), config)
    assert a.seed == b.seed == 11
    assert [_ids(a[i]) for i in range(4)] == [_ids(b[i]) for i in range(4)]


def test_workers_give_the_same_batches():
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    config = make_config()
    aug = iaa.Affine(rotate=(-20, 20))
    direct = DataGenerator(numbered(6), config, seed=2, augmentation=aug)
    expected = []
    for _ in range(2):
        expected.append([direct[i] for i in range(len(direct))])
        direct.on_epoch_end()
    pooled = DataGenerator(numbered(6), config, seed=2, augmentation=aug, workers=2,
                           use_multiprocessing=True)
    adapter = PyDatasetAdapter(pooled)
    assert adapter.enqueuer is not None
    for epoch in range(2):
        adapter.on_epoch_begin()
        got = list(adapter.get_numpy_iterator())
        adapter.on_epoch_end()
        assert len(got) == len(expected[epoch])
        for batch, want in zip(got, expected[epoch], strict=True):
            for a, b in zip(batch[0], want[0], strict=True):
                np.testing.assert_array_equal(a, b)


def test_no_augmentation_sources():
    ds = ToyDataset()
    ds.add_class("a", 1, "one")
    ds.add_class("b", 1, "bee")
    ds.add_image("a", image_id=0, path=None, boxes=[(10, 5, 30, 20, 1)], size=(64, 64))
    ds.add_image("b", image_id=0, path=None, boxes=[(10, 5, 30, 20, 2)], size=(64, 64))
    ds.prepare()
    gen = DataGenerator(ds, make_config(), shuffle=False, augmentation=iaa.Fliplr(1.0),
                        no_augmentation_sources=["b"], seed=0)
    boxes = gen[0][0][5]
    np.testing.assert_array_equal(boxes[:, 0], [[10, 44, 30, 59], [10, 5, 30, 20]])


def test_negative_images_skipped_or_kept():
    specs = [[(10, 5, 30, 20, 1)], [], [(20, 20, 40, 40, 2)], []]
    skipping = DataGenerator(toy(specs), make_config(), shuffle=False, seed=0)
    assert [_ids(skipping[i]) for i in range(2)] == [[0, 2], [2, 0]]
    keeping = DataGenerator(toy(specs), make_config(KEEP_NEGATIVE_IMAGES=True),
                            shuffle=False, seed=0)
    assert [_ids(keeping[i]) for i in range(2)] == [[0, 1], [2, 3]]
    negative = keeping[0][0]
    assert not negative[4][1].any() and not negative[5][1].any()
    assert (negative[2][1] == 1).sum() == 0 and (negative[2][1] == -1).sum() == 32


def test_dataset_without_instances_raises():
    gen = DataGenerator(toy([[], [], []]), make_config(), seed=0)
    with pytest.raises(ValueError, match="No image of the dataset has an instance"):
        gen[0]


def test_max_gt_instances_subsampled():
    boxes = [(2 + 8 * i, 2, 8 + 8 * i, 12, 1) for i in range(7)]
    gen = DataGenerator(toy([boxes]), make_config(USE_MINI_MASK=False), seed=0)
    inputs = gen[0][0]
    assert inputs[4].shape == (2, 5) and np.count_nonzero(inputs[4][0]) == 5
    assert inputs[6].shape == (2, 64, 64, 5)
    for k in range(5):  # each kept box still matches its kept mask
        ys, xs = np.nonzero(inputs[6][0, :, :, k])
        np.testing.assert_array_equal(inputs[5][0, k], [ys.min(), xs.min(),
                                                        ys.max() + 1, xs.max() + 1])


def test_none_mode_pads_to_image_shape_or_raises():
    config = make_config(IMAGE_RESIZE_MODE="none", USE_MINI_MASK=False)
    small = DataGenerator(toy([[(1, 1, 20, 20, 1)]], size=(40, 50)), config, seed=0)
    images, meta = small[0][0][:2]
    assert images.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(meta[0, 1:11], [40, 50, 3, 64, 64, 3, 0, 0, 40, 50])
    assert small[0][0][6].shape == (2, 64, 64, 5)
    big = DataGenerator(toy([[(1, 1, 20, 20, 1)]], size=(70, 50)), config, seed=0)
    with pytest.raises(ValueError, match=r"image 0 .*\(70, 50\), larger than"):
        big[0]


def test_random_rois_and_detection_targets():
    config = make_config()
    gen = DataGenerator(numbered(4), config, seed=0, random_rois=20, detection_targets=True)
    inputs = gen[0][0]
    shapes = [a.shape for a in inputs[7:]]
    assert shapes == [(2, 20, 4), (2, 8, 4), (2, 8, 1), (2, 8, 4, 4), (2, 8, 28, 28, 4)]
    with pytest.raises(ValueError, match="random_rois"):
        DataGenerator(numbered(4), config, detection_targets=True)


def test_constructor_errors():
    config = make_config()
    with pytest.raises(ValueError, match="no images"):
        DataGenerator(Dataset(), config)
    with pytest.raises(ValueError, match="steps"):
        DataGenerator(numbered(2), config, steps=0)
    with pytest.raises(TypeError, match="imgaug"):
        DataGenerator(numbered(2), config, augmentation="fliplr")
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        DataGenerator(numbered(2), make_config(NUM_CLASSES=2, MEAN_PIXEL=np.zeros(3)))


def test_legacy_data_generator():
    gen = data_generator(numbered(3), make_config(), shuffle=False, batch_size=3)
    inputs, outputs = next(gen)
    assert isinstance(inputs, list) and len(inputs) == 7 and outputs == []
    assert inputs[0].shape == (3, 64, 64, 3)
    assert next(gen)[0][1][:, 0].tolist() == [0, 1, 2]  # new epoch after one pass
    gen = data_generator(numbered(3), make_config(), random_rois=10, detection_targets=True)
    inputs, outputs = next(gen)
    assert len(inputs) == 9 and len(outputs) == 3 and inputs[0].shape[0] == 1


def test_legacy_augment_flag_flips_half_the_time():
    ds = toy([[(10, 5, 30, 20, 1)]])
    lefts = set()
    for seed in range(12):
        image, _, _, bbox, mask = load_image_gt(ds, make_config(), 0, augment=True, rng=seed)
        np.testing.assert_array_equal(mask[..., 0], image[..., 0] > 100)
        lefts.add(int(bbox[0, 1]))
    assert lefts == {5, 44}
