"""matterport's COCO weights layout loads into our models (by name, with the exclude list).

The file is generated from `/work/shared/fixtures/matterport_coco_layout.json` (the structure
of the released `mask_rcnn_coco.h5`) with h5py in the Keras-2 layout. Small datasets hold
random values; big ones (about 250 MB in all) are HDF5 fill values, a different constant per
dataset, so the file costs no disk or write time while every value can still be checked.
"""

import json
import os

import h5py
import numpy as np
import pytest
from shared_fixtures import FIXTURES as SHARED_FIXTURES

from mrcnn import model as modellib
from mrcnn.checkpoint import save_weights_h5
from mrcnn.config import Config

FIXTURES = SHARED_FIXTURES
HEAD_LAYERS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
# matterport's `mrcnn_bbox` is a weightless Reshape: three of the four names hold weights.
WEIGHTED_HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"]
RANDOM_MAX_SIZE = 20_000  # datasets up to this many elements get random values

pytestmark = pytest.mark.slow


class CocoConfig(Config):
    """matterport's CocoConfig sizes (ResNet-101, 81 classes) on small images."""

    NAME = "coco"
    NUM_CLASSES = 1 + 80
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128


class ShapesR101Config(CocoConfig):
    NAME = "shapes"
    NUM_CLASSES = 1 + 3


def write_layout_file(path, layout, seed=0):
    """Write an HDF5 file in the Keras-2 layout described by `layout`.

    Returns:
        {(layer name, weight name): expected float32 value or scalar fill value}.
    """
    rng = np.random.default_rng(seed)
    expected = {}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layout["attrs"]["layer_names"]])
        f.attrs["backend"] = layout["attrs"]["backend"].encode()
        f.attrs["keras_version"] = layout["attrs"]["keras_version"].encode()
        for k, layer in enumerate(layout["layers"]):
            group = f.create_group(layer["name"])
            group.attrs["weight_names"] = np.array(
                [n.encode() for n in layer["weight_names"]], dtype="S128")
            for j, w in enumerate(layer["weights"]):
                shape = tuple(w["shape"])
                if int(np.prod(shape)) <= RANDOM_MAX_SIZE:
                    value = rng.standard_normal(shape).astype(np.float32)
                    group.create_dataset(w["name"], data=value)
                else:
                    value = np.float32(0.001 * (k + 1) + 0.0001 * j)
                    group.create_dataset(w["name"], shape=shape, dtype="float32",
                                         fillvalue=value)
                expected[(layer["name"], w["name"])] = value
    return expected


def weighted_names(layout):
    return [layer["name"] for layer in layout["layers"] if layer["weights"]]


def check_values(model, layout, expected, layers):
    """Every weight of `layers` holds the file's value (in the file's weight order)."""
    by_name = {layer["name"]: layer for layer in layout["layers"]}
    checked = 0
    for name in layers:
        layer = model.keras_model.get_layer(name)
        file_weights = by_name[name]["weights"]
        variables = layer.weights
        assert len(variables) == len(file_weights), name
        for variable, w in zip(variables, file_weights):
            want = expected[(name, w["name"])]
            got = variable.numpy()
            assert got.shape == tuple(w["shape"]), (name, w["name"])
            if np.ndim(want) == 0:
                assert np.all(got == want), (name, w["name"])
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {w['name']}")
            checked += 1
    return checked


@pytest.fixture(scope="module")
def coco_layout():
    with open(os.path.join(FIXTURES, "matterport_coco_layout.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory, coco_layout):
    path = str(tmp_path_factory.mktemp("weights") / "mask_rcnn_coco.h5")
    expected = write_layout_file(path, coco_layout)
    return path, expected


@pytest.fixture(scope="module")
def coco_model(tmp_path_factory):
    return modellib.MaskRCNN("training", CocoConfig(), str(tmp_path_factory.mktemp("logs")))


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory):
    return modellib.MaskRCNN("training", ShapesR101Config(),
                             str(tmp_path_factory.mktemp("logs")))


def test_generated_file_has_matterports_layout(coco_file, coco_layout):
    path, _ = coco_file
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == coco_layout["attrs"]["layer_names"]
        group = f["rpn_model"]
        assert [n.decode() for n in group.attrs["weight_names"]][0] == (
            "rpn_conv_shared/kernel:0")
        assert group["rpn_conv_shared"]["kernel:0"].shape == (3, 3, 256, 512)


def test_coco_file_loads_completely_into_the_coco_training_model(coco_file, coco_layout,
                                                                 coco_model):
    path, expected = coco_file
    report = coco_model.load_weights(path, by_name=True)
    names = weighted_names(coco_layout)
    assert report.loaded == names  # every weighted layer, in file/model order
    assert not report.mismatched and not report.missing_in_file
    assert not report.unused_in_file and not report.excluded
    ours = [layer.name for layer in coco_model.keras_model.layers if layer.weights]
    assert ours == names
    checked = check_values(coco_model, coco_layout, expected, names)
    assert checked == sum(len(layer["weights"]) for layer in coco_layout["layers"])
    # A non-run path does not change the run: a fresh run at epoch 0.
    assert coco_model.epoch == 0


def test_coco_file_loads_into_shapes_model_with_the_standard_exclude(coco_file, coco_layout,
                                                                     shapes_model):
    path, expected = coco_file
    report = shapes_model.load_weights(path, by_name=True, exclude=HEAD_LAYERS)
    names = weighted_names(coco_layout)
    assert "mrcnn_bbox" not in names
    assert sorted(report.excluded) == sorted(WEIGHTED_HEADS)
    assert report.loaded == [n for n in names if n not in WEIGHTED_HEADS]
    assert not report.mismatched and not report.missing_in_file and not report.unused_in_file
    check_values(shapes_model, coco_layout, expected,
                 ["conv1", "bn_conv1", "res4w_branch2c", "bn5c_branch2c", "fpn_p2",
                  "rpn_model", "mrcnn_class_conv1", "mrcnn_class_bn2", "mrcnn_mask_deconv"])
    # The class-specific heads keep their own (4-class) shapes and values.
    assert shapes_model.keras_model.get_layer("mrcnn_class_logits").weights[0].shape[-1] == 4
    assert shapes_model.keras_model.get_layer("mrcnn_mask").weights[0].shape[-1] == 4


def test_coco_file_without_exclude_fails_listing_the_head_layers(coco_file, shapes_model):
    path, _ = coco_file
    before = shapes_model.keras_model.get_layer("conv1").weights[0].numpy().copy()
    with pytest.raises(ValueError) as info:
        shapes_model.load_weights(path, by_name=True)
    message = str(info.value)
    for name in WEIGHTED_HEADS:
        assert repr(name) in message
    assert "exclude=" in message
    assert "res4a_branch2a" not in message
    # Nothing was assigned by the failed load.
    np.testing.assert_array_equal(
        shapes_model.keras_model.get_layer("conv1").weights[0].numpy(), before)


def test_checkpoint_of_one_class_count_loads_into_another(tmp_path, coco_model, shapes_model):
    # A 4-class checkpoint written by our writer, loaded into the 81-class model.
    path = str(tmp_path / "mask_rcnn_shapes_0001.h5")
    shapes_km = shapes_model.keras_model
    shapes_km.get_layer("fpn_p3").weights[1].assign(np.full((256,), 0.25, np.float32))
    save_weights_h5(shapes_km, path, epoch=1)
    report = coco_model.load_weights(path, exclude=HEAD_LAYERS)
    assert sorted(report.excluded) == sorted(WEIGHTED_HEADS)
    assert not report.mismatched and not report.missing_in_file and not report.unused_in_file
    assert len(report.loaded) == len([x for x in coco_model.keras_model.layers if x.weights]) - 3
    coco_km = coco_model.keras_model
    np.testing.assert_array_equal(coco_km.get_layer("fpn_p3").weights[1].numpy(), 0.25)
    for name in ("res3b_branch2b", "mrcnn_class_conv2", "rpn_model"):
        for a, b in zip(coco_km.get_layer(name).weights, shapes_km.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert coco_km.get_layer("mrcnn_bbox_fc").weights[0].shape[-1] == 81 * 4
