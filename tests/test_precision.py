"""mrcnn.modeling.precision (MIXED_PRECISION="auto" and the slow-policy warning), and how far
mixed_bfloat16 results may drift from float32 on the same weights.

The tolerance of bf16 (stated and justified here, measured with TinyConfig and the name-seeded
weights of test_refactor_golden):
- bfloat16 keeps 8 significant bits, a relative rounding error of at most 2**-9 (0.2%) per
  operation. Through ResNet-50 and the FPN the errors add up to a relative RMS error of about
  1% of the feature maps and the RPN outputs (measured 1.0-1.9% on three shapes images); the
  bound is 3%.
- The box head and DetectionLayer on the same float32 features and ROIs: class probabilities
  and detection scores within 0.02 (measured at most 0.0072), refined boxes within 0.1 px of a
  128 px image (measured at most 0.013 px: the deltas are small and the geometry after them
  is float32), the same class wherever float32's best class leads the second by more than
  0.05 (measured: the same class everywhere).
- What bf16 cannot promise: the same *proposals* from a network whose objectness scores are
  near-ties. Random weights give 4,092 anchors almost equal scores, so a 1% change reorders
  the top-k and the NMS; a trained network separates objects from background by far more. The
  comparison of detections therefore uses fixed, non-overlapping ROIs (NMS keeps them all in
  any order), so every difference it sees is a numeric one.
"""

import logging

import keras
import numpy as np
import pytest
from test_refactor_golden import named_weights
from tiny_config import TinyConfig

from mrcnn import model as modellib
from mrcnn.config import Config
from mrcnn.modeling import builder, precision
from samples.shapes.shapes import ShapesDataset

# Two processors of an AMX machine, as /proc/cpuinfo lists them (flags shortened).
AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model\t\t: 143
flags\t\t: fpu vme sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
bogomips\t: 4800.00

processor\t: 1
vendor_id\t: GenuineIntel
model\t\t: 143
flags\t\t: fpu vme sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
# The Xeon (model 207) where bf16 measured 3.8x slower than float32: no bf16 flag.
XEON_207_CPUINFO = """processor\t: 0
model\t\t: 207
flags\t\t: fpu sse2 avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni
"""
ZEN4_CPUINFO = "processor\t: 0\nflags\t\t: sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes bf16 sve\n"


# --------------------------------------------------------------------------- detection
def test_cpu_flags_reads_every_flags_line():
    flags = precision.cpu_flags(AMX_CPUINFO)
    assert {"amx_bf16", "avx512_bf16", "avx512f", "fpu"} <= flags
    assert "4800.00" not in flags and "genuineintel" not in flags
    assert "amx_bf16" not in precision.cpu_flags(XEON_207_CPUINFO)
    assert {"asimd", "bf16"} <= precision.cpu_flags(ARM_CPUINFO)
    assert precision.cpu_flags("") == frozenset()


def test_machine_cpu_flags_reads_the_file_and_survives_a_missing_one(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(ZEN4_CPUINFO)
    precision.machine_cpu_flags.cache_clear()
    try:
        assert "avx512_bf16" in precision.machine_cpu_flags(str(path))
        assert precision.machine_cpu_flags(str(tmp_path / "missing")) == frozenset()
    finally:
        precision.machine_cpu_flags.cache_clear()


@pytest.mark.parametrize("cpuinfo, gpus, expected", [
    (AMX_CPUINFO, [], "mixed_bfloat16"),
    (ZEN4_CPUINFO, [], "mixed_bfloat16"),          # avx512_bf16 without AMX
    (XEON_207_CPUINFO, [], None),                  # AVX-512F/VNNI only: bf16 is emulated
    (ARM_CPUINFO, [], None),
    ("", [], None),
    (XEON_207_CPUINFO, [(8, 0)], "mixed_float16"),
    (AMX_CPUINFO, [(7, 0)], "mixed_float16"),      # the GPU runs the model, not the CPU
    (AMX_CPUINFO, [(6, 1)], None),                 # Pascal: no tensor cores
    (XEON_207_CPUINFO, [(8, 6), (6, 0)], None),    # the slowest GPU decides
    (XEON_207_CPUINFO, [(0, 0)], None),            # capability not reported
])
def test_choose_policy(cpuinfo, gpus, expected):
    policy, reason = precision.choose_policy(precision.cpu_flags(cpuinfo), gpus)
    assert policy == expected
    assert reason


@pytest.mark.parametrize("policy, cpuinfo, gpus, slow", [
    ("mixed_bfloat16", XEON_207_CPUINFO, [], True),
    ("mixed_bfloat16", AMX_CPUINFO, [], False),
    ("mixed_bfloat16", ZEN4_CPUINFO, [], False),
    ("mixed_bfloat16", XEON_207_CPUINFO, [(7, 5)], True),   # bf16 needs Ampere
    ("mixed_bfloat16", XEON_207_CPUINFO, [(8, 0)], False),
    ("mixed_float16", AMX_CPUINFO, [], True),                # float16 on a CPU
    ("mixed_float16", AMX_CPUINFO, [(6, 1)], True),
    ("mixed_float16", AMX_CPUINFO, [(7, 0)], False),
    (None, XEON_207_CPUINFO, [], False),
    ("float32", XEON_207_CPUINFO, [(6, 1)], False),
])
def test_slow_policy_reason(policy, cpuinfo, gpus, slow):
    reason = precision.slow_policy_reason(policy, precision.cpu_flags(cpuinfo), gpus)
    assert bool(reason) is slow, reason


def test_slow_policy_reason_rejects_an_unknown_policy():
    with pytest.raises(ValueError, match="'float16'"):
        precision.slow_policy_reason("float16", set(), [])


def test_resolve_auto_logs_its_choice(caplog):
    flags = precision.cpu_flags(AMX_CPUINFO)
    with caplog.at_level(logging.INFO, logger="mrcnn.modeling.precision"):
        assert precision.resolve_policy("auto", flags, []) == "mixed_bfloat16"
        assert precision.resolve_policy("auto", set(), []) is None
        assert precision.resolve_policy("auto", set(), [(7, 0)]) == "mixed_float16"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "chose mixed_bfloat16: CPU flags show amx_bf16, avx512_bf16" in messages[0]
    assert "chose float32" in messages[1] and "chose mixed_float16" in messages[2]


def test_resolve_explicit_policy_warns_only_where_it_is_slow(caplog):
    xeon = precision.cpu_flags(XEON_207_CPUINFO)
    with caplog.at_level(logging.WARNING, logger="mrcnn.modeling.precision"):
        assert precision.resolve_policy("mixed_bfloat16", xeon, []) == "mixed_bfloat16"
        assert precision.resolve_policy("mixed_float16", xeon, [(8, 0)]) == "mixed_float16"
        assert precision.resolve_policy("mixed_bfloat16", precision.cpu_flags(AMX_CPUINFO),
                                        []) == "mixed_bfloat16"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'mixed_bfloat16' is likely slower than float32" in warnings[0]
    assert "neither of amx_bf16, avx512_bf16" in warnings[0]


def test_resolve_none_detects_nothing(monkeypatch):
    def boom():
        raise AssertionError("no hardware detection for float32")

    monkeypatch.setattr(precision, "machine_cpu_flags", boom)
    monkeypatch.setattr(precision, "gpu_compute_capabilities", boom)
    assert precision.resolve_policy(None) is None


@pytest.mark.parametrize("value", ["float16", "bfloat16", "AUTO", 16])
def test_resolve_rejects_unknown_values(value):
    with pytest.raises(ValueError, match="MIXED_PRECISION"):
        precision.resolve_policy(value, set(), [])


def test_config_accepts_auto_and_keeps_the_default_float32():
    assert Config.MIXED_PRECISION is None
    config = type("AutoConfig", (Config,), {"NAME": "auto", "MIXED_PRECISION": "auto"})()
    assert config.MIXED_PRECISION == "auto"


def test_reported_cpu_flags_names_the_three():
    assert precision.reported_cpu_flags(precision.cpu_flags(XEON_207_CPUINFO)) == {
        "amx_bf16": False, "avx512_bf16": False, "avx512f": True}


def test_this_machine_resolves_without_error():
    flags = precision.reported_cpu_flags()
    assert set(flags) == set(precision.REPORTED_CPU_FLAGS)
    assert precision.resolve_policy("auto") in (None, "mixed_bfloat16", "mixed_float16")


# --------------------------------------------------------------------------- the builder
class AutoConfig(TinyConfig):
    NAME = "auto"
    IMAGES_PER_GPU = 1
    MIXED_PRECISION = "auto"


@pytest.mark.slow
@pytest.mark.parametrize("cpuinfo, expected", [(AMX_CPUINFO, "mixed_bfloat16"),
                                               (XEON_207_CPUINFO, "float32")])
def test_builder_builds_with_the_policy_auto_picks(monkeypatch, cpuinfo, expected):
    monkeypatch.setattr(precision, "machine_cpu_flags", lambda: precision.cpu_flags(cpuinfo))
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: [])
    model = builder.build_keras_model("inference", AutoConfig())
    assert model.get_layer("conv1").dtype_policy.name == expected
    assert keras.config.dtype_policy().name == "float32"


# --------------------------------------------------------------------------- bf16 tolerance
# See the module docstring for where these numbers come from.
FEATURE_RMS_TOLERANCE = 0.03
CLASS_PROB_TOLERANCE = 0.02
BOX_PIXEL_TOLERANCE = 0.1
CLASS_MARGIN = 0.05
FEATURE_LAYERS = ("fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "rpn_class", "rpn_bbox")


class Float32Config(TinyConfig):
    NAME = "precision"
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0
    DETECTION_MAX_INSTANCES = 16


class Bf16Config(Float32Config):
    MIXED_PRECISION = "mixed_bfloat16"


def grid_rois(side=4, margin=0.03):
    """[side * side, (y1, x1, y2, x2)] normalized boxes on a grid, far apart (IoU 0)."""
    step = 1.0 / side
    return np.array([[r * step + margin, c * step + margin, (r + 1) * step - margin,
                      (c + 1) * step - margin] for r in range(side) for c in range(side)],
                    np.float32)


def head_model(config, policy, feature_shapes, num_rois):
    """The box head and the detection layer on given features and ROIs."""
    with builder.dtype_policy(policy):
        maps = [keras.Input(shape=s, name=f"p{level}")
                for level, s in zip(range(2, 6), feature_shapes, strict=True)]
        meta = builder.image_meta_input(config)
        rois = keras.Input(shape=(num_rois, 4), name="rois")
        _, mrcnn_class, mrcnn_bbox = builder.classifier(rois, maps, meta, config)
        detections = builder.detection(config)([rois, mrcnn_class, mrcnn_bbox, meta])
    model = keras.Model([rois, meta] + maps, [mrcnn_class, detections])
    named_weights(model)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("models"))
    out = {}
    for key, cls in (("float32", Float32Config), ("bf16", Bf16Config)):
        out[key] = modellib.MaskRCNN("inference", cls(), model_dir)
        named_weights(out[key].keras_model)
    return out


@pytest.fixture(scope="module")
def image():
    ds = ShapesDataset()
    ds.load_shapes(1, 128, 128, seed=3)
    ds.prepare()
    return ds.load_image(0)


def relative_rms(reference, value):
    reference = np.asarray(reference, np.float64)
    error = np.asarray(value, np.float64) - reference
    return float(np.sqrt(np.mean(error ** 2)) / np.std(reference))


@pytest.mark.slow
def test_bf16_features_and_rpn_stay_within_tolerance_and_geometry_is_float32(models, image):
    values = {}
    for key, m in models.items():
        values[key] = m.run_graph([image], [(n, m.keras_model.get_layer(n).output)
                                            for n in FEATURE_LAYERS])
    assert values["bf16"]["fpn_p2"].dtype != np.float32  # the bf16 graph really is bf16
    for name in FEATURE_LAYERS:
        error = relative_rms(values["float32"][name], values["bf16"][name])
        assert error < FEATURE_RMS_TOLERANCE, (name, error)
        assert error > 1e-4, (name, error)  # and it differs from float32
    bf16 = models["bf16"]
    molded, metas, _ = bf16.mold_inputs([image])
    outputs = modellib.predict_molded(bf16.keras_model, bf16.config, molded, metas)
    assert outputs[0].dtype == np.float32  # detections
    assert outputs[4].dtype == np.float32  # rpn_rois


@pytest.mark.slow
def test_bf16_detections_match_float32_on_the_same_rois(models, image):
    reference = models["float32"]
    molded, metas, _ = reference.mold_inputs([image])
    maps = reference.run_graph([image], ["fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5"])
    maps = [v.astype(np.float32) for v in maps.values()]
    rois = grid_rois()[np.newaxis]
    shapes = [m.shape[1:] for m in maps]
    results = {}
    for key, policy in (("float32", None), ("bf16", "mixed_bfloat16")):
        model = head_model(reference.config, policy, shapes, rois.shape[1])
        probs, detections = model.predict_on_batch([rois, metas] + maps)
        results[key] = (np.asarray(probs, np.float32)[0], np.asarray(detections)[0])
    probs32, det32 = results["float32"]
    probs16, det16 = results["bf16"]
    assert det16.dtype == np.float32
    assert np.abs(probs16 - probs32).max() < CLASS_PROB_TOLERANCE

    def by_roi(det):
        """{grid cell: (class_id, score, box in pixels)} of the real detections."""
        out = {}
        for row in det[det[:, 4] > 0]:
            centre = (row[:2] + row[2:4]) / 2
            cell = tuple(np.floor(centre * 4).astype(int))
            out[cell] = (int(row[4]), float(row[5]), row[:4] * 128)
        return out

    a, b = by_roi(det32), by_roi(det16)
    ranked = np.sort(probs32, axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > CLASS_MARGIN
    cells = [(i // 4, i % 4) for i in range(16)]
    compared = 0
    for i, cell in enumerate(cells):
        if not clear[i]:
            continue
        assert (cell in a) == (cell in b), cell  # background in both, or detected in both
        if cell in a:
            compared += 1
            assert a[cell][0] == b[cell][0], cell
            assert abs(a[cell][1] - b[cell][1]) < CLASS_PROB_TOLERANCE, cell
            assert np.abs(a[cell][2] - b[cell][2]).max() < BOX_PIXEL_TOLERANCE, cell
    assert compared >= 4, compared
