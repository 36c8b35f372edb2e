"""MIXED_PRECISION: bf16 graph builds, trains with finite losses, detects; policy is local."""

import keras
import numpy as np
import pytest
from tiny_config import TinyConfig

from mrcnn import model as modellib
from samples.shapes.shapes import ShapesDataset


class Bf16Config(TinyConfig):
    NAME = "bf16"
    DETECTION_MIN_CONFIDENCE = 0.0
    STEPS_PER_EPOCH = 2
    MIXED_PRECISION = "mixed_bfloat16"


@pytest.mark.slow
def test_bf16_trains_and_detects_without_changing_global_policy(tmp_path):
    ds = ShapesDataset()
    ds.load_shapes(8, 128, 128, seed=1)
    ds.prepare()
    model = modellib.MaskRCNN("training", Bf16Config(), str(tmp_path))
    assert keras.config.dtype_policy().name == "float32"
    assert model.keras_model.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.keras_model.get_layer("conv1").kernel.dtype == "float32"  # master weights
    history = model.train(ds, ds, learning_rate=0.01, epochs=1, layers="all", workers=1,
                          verbose=0)
    for name, values in history.history.items():
        assert np.all(np.isfinite(values)), name
    assert history.history["loss"][0] > 0

    infer = type("Bf16Infer", (Bf16Config,), {"IMAGES_PER_GPU": 1})()
    inference = modellib.MaskRCNN("inference", infer, str(tmp_path))
    inference.load_weights(model.find_last(), by_name=True)
    r = inference.detect([ds.load_image(0)])[0]
    n = r["rois"].shape[0]
    assert r["masks"].shape == (128, 128, n) and r["class_ids"].shape == (n,)
    assert r["scores"].dtype == np.float32


@pytest.mark.slow
def test_float16_training_scales_the_loss(tmp_path):
    """mixed_float16: compile wraps SGD in a LossScaleOptimizer (float16 gradients underflow
    otherwise); a float32 or bf16 model keeps the plain SGD."""
    from mrcnn.engine.train_loop import compile_model, computes_in_float16

    config = type("Fp16Config", (TinyConfig,), {"NAME": "fp16",
                                                "MIXED_PRECISION": "mixed_float16"})()
    model = modellib.MaskRCNN("training", config, str(tmp_path)).keras_model
    assert computes_in_float16(model)
    compile_model(model, 0.01, 0.9, 5.0)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.SGD)
    assert optimizer.inner_optimizer.global_clipnorm == 5.0
    scale = float(optimizer.dynamic_scale)
    assert scale > 1 and float(optimizer.scale_loss(2.0)) == 2.0 * scale

    plain = modellib.MaskRCNN("training", Bf16Config(), str(tmp_path)).keras_model
    assert not computes_in_float16(plain)
    compile_model(plain, 0.01, 0.9, 5.0)
    assert isinstance(plain.optimizer, keras.optimizers.SGD)
