"""bench/cpu_settings.py: what it measures (arguments, the settings lists, the head models it
times), the subprocess JSON protocol and the ratio arithmetic; the slow smoke test runs
`--quick` end to end, subprocesses included."""

import importlib.util
import json
import math
import os
import sys

import pytest

_ROOT = os.path.join(os.path.dirname(__file__), "..")
_SPEC = importlib.util.spec_from_file_location(
    "bench_cpu_settings", os.path.join(_ROOT, "bench", "cpu_settings.py"))
sys.path.insert(0, os.path.abspath(_ROOT))
cpu_settings = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cpu_settings)

PREFIX = cpu_settings.CHILD_PREFIX


# ------------------------------------------------------------------ arguments, settings
def test_defaults_are_the_full_size_benchmark():
    args = cpu_settings.parse_args([])
    assert (args.backbone, args.batch, args.repeats, args.image_size) == ("resnet101", 8, 5, 128)
    assert not args.tiny and args.child is None and args.json is None
    assert args.sections == ["xla", "threads", "onednn"]
    assert args.onednn == ["0", "1"]
    assert args.threads == cpu_settings.thread_settings(cpu_settings.available_cores())


def test_quick_is_a_small_run_and_explicit_values_win():
    args = cpu_settings.parse_args(["--quick"])
    assert (args.backbone, args.batch, args.repeats, args.tiny) == ("resnet50", 2, 2, True)
    args = cpu_settings.parse_args(["--quick", "--batch", "1", "--repeats", "1",
                                    "--backbone", "resnet101", "--threads", "1,1", "2,0",
                                    "--onednn", "0", "--sections", "threads"])
    assert (args.backbone, args.batch, args.repeats) == ("resnet101", 1, 1)
    assert args.threads == [(1, 1), (2, 0)]
    assert args.onednn == ["0"] and args.sections == ["threads"]


@pytest.mark.parametrize("argv", [
    ["--repeats", "0"], ["--batch", "0"], ["--image-size", "96"], ["--image-size", "64"],
    ["--threads", "2"], ["--threads", "a,b"], ["--threads", "-1,0"], ["--threads", "1,2,3"],
    ["--onednn", "2"], ["--sections", "gpu"], ["--backbone", "both"],
])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        cpu_settings.parse_args(argv)


@pytest.mark.parametrize("cores, expected", [
    # The list for two cores: default, then intra {2, 1} x inter {1, 2}.
    (2, [(0, 0), (2, 1), (2, 2), (1, 1), (1, 2)]),
    (1, [(0, 0), (1, 1), (1, 2)]),  # cores // 2 would be 0 (= default): at least 1
    (3, [(0, 0), (3, 1), (3, 2), (1, 1), (1, 2)]),
    (8, [(0, 0), (8, 1), (8, 2), (4, 1), (4, 2)]),
])
def test_thread_settings_are_the_default_then_cores_and_half_by_one_and_two(cores, expected):
    assert cpu_settings.thread_settings(cores) == expected


@pytest.mark.parametrize("cores", [0, -2, 2.0, True, "2"])
def test_thread_settings_refuse_a_bad_core_count(cores):
    with pytest.raises(ValueError, match="cores"):
        cpu_settings.thread_settings(cores)


def test_process_settings_run_the_default_first_once_then_threads_then_onednn():
    runs = cpu_settings.process_settings(["threads", "onednn"],
                                         [(0, 0), (2, 1), (2, 1), (1, 2)], ["0", "1", "0"])
    assert [(r["section"], r["setting"], r["intra"], r["inter"], r["onednn"]) for r in runs] == [
        ("threads", "default", 0, 0, None),
        ("threads", "intra=2 inter=1", 2, 1, None),
        ("threads", "intra=1 inter=2", 1, 2, None),
        ("onednn", "TF_ENABLE_ONEDNN_OPTS=0", 0, 0, "0"),
        ("onednn", "TF_ENABLE_ONEDNN_OPTS=1", 0, 0, "1"),
    ]


def test_process_settings_follow_the_sections():
    only_onednn = cpu_settings.process_settings(["onednn"], [(2, 1)], ["0"])
    assert [r["setting"] for r in only_onednn] == ["default", "TF_ENABLE_ONEDNN_OPTS=0"]
    only_threads = cpu_settings.process_settings(["xla", "threads"], [(2, 1)], ["0"])
    assert [r["setting"] for r in only_threads] == ["default", "intra=2 inter=1"]


def test_child_command_reparses_to_the_same_sizes_and_the_run_s_pools():
    args = cpu_settings.parse_args(["--quick", "--batch", "1", "--repeats", "3"])
    run = cpu_settings.process_settings(["threads"], [(2, 1)], [])[1]
    cmd = cpu_settings.child_command(run, args)
    assert cmd[0] == sys.executable and cmd[1].endswith(os.path.join("bench", "cpu_settings.py"))
    child = cpu_settings.parse_args(cmd[2:])
    assert child.child == (2, 1)
    assert (child.backbone, child.batch, child.repeats, child.image_size, child.tiny) == (
        "resnet50", 1, 3, 128, True)
    full = cpu_settings.parse_args(["--backbone", "resnet50"])
    assert not cpu_settings.parse_args(cpu_settings.child_command(run, full)[2:]).tiny


# ------------------------------------------------------------------ child protocol
def test_child_output_is_read_from_the_last_prefixed_line_among_noise():
    stdout = "\n".join([
        "Epoch 1/1",
        PREFIX + json.dumps({"heads_step": 9.0, "detect": 9.0}),
        "some TF log line",
        PREFIX + json.dumps({"heads_step": 0.5, "detect": 0.25, "intra": 2, "inter": 1}),
        "",
    ])
    result = cpu_settings.parse_child_output(stdout)
    assert result == {"heads_step": 0.5, "detect": 0.25, "intra": 2, "inter": 1}


@pytest.mark.parametrize("stdout, message", [
    ("", "no 'CPU_SETTINGS_CHILD' line"),
    ("heads_step 0.5\n", "no 'CPU_SETTINGS_CHILD' line"),
    (PREFIX + "{not json", "not JSON"),
    (PREFIX + "[0.5, 0.25]", "JSON object"),
    (PREFIX + '{"heads_step": 0.5}', "'detect'"),
    (PREFIX + '{"heads_step": 0, "detect": 0.2}', "'heads_step'"),
    (PREFIX + '{"heads_step": -1.0, "detect": 0.2}', "'heads_step'"),
    (PREFIX + '{"heads_step": NaN, "detect": 0.2}', "'heads_step'"),
    (PREFIX + '{"heads_step": 0.5, "detect": Infinity}', "'detect'"),
    (PREFIX + '{"heads_step": true, "detect": 0.2}', "'heads_step'"),
    (PREFIX + '{"heads_step": "0.5", "detect": 0.2}', "'heads_step'"),
])
def test_bad_child_output_raises_value_error_naming_the_problem(stdout, message):
    with pytest.raises(ValueError, match=message):
        cpu_settings.parse_child_output(stdout)


# ------------------------------------------------------------------ ratios, errors
@pytest.mark.parametrize("seconds, reference, expected", [
    (2.0, 4.0, 0.5), (3.0, 1.5, 2.0), (1.0, 1.0, 1.0),
    (None, 1.0, None), (1.0, None, None), (1.0, 0.0, None), (0.0, 1.0, None),
    (1.0, -2.0, None), (math.inf, 1.0, None), (1.0, math.nan, None),
])
def test_ratio_is_seconds_over_reference_or_none(seconds, reference, expected):
    assert cpu_settings.ratio(seconds, reference) == expected


def test_ratios_refer_to_no_xla_in_the_xla_section_and_to_the_default_child_elsewhere():
    row = cpu_settings.make_row
    rows = [row("xla", "backbone_fwd", "jit_compile=False", 0.4),
            row("xla", "backbone_fwd", "jit_compile=True", 0.6),
            row("xla", "train_step_heads", "jit_compile=False", 2.0),
            row("xla", "train_step_heads", "jit_compile=True", error="InvalidArgumentError"),
            row("xla", "mask_fwd_bwd", "jit_compile=True", 0.3),  # its reference failed
            row("threads", "heads_step", "default", 2.0),
            row("threads", "detect", "default", 0.5),
            row("threads", "heads_step", "intra=1 inter=1", 3.0),
            row("threads", "detect", "intra=1 inter=1", 0.4),
            row("onednn", "heads_step", "TF_ENABLE_ONEDNN_OPTS=0", 1.0),
            row("onednn", "detect", "TF_ENABLE_ONEDNN_OPTS=0", error="ChildExit1")]
    cpu_settings.add_ratios(rows)
    assert [r["ratio"] for r in rows] == [1.0, pytest.approx(1.5), 1.0, None, None,
                                          1.0, 1.0, 1.5, pytest.approx(0.8), 0.5, None]


def test_error_detail_lists_the_ops_xla_refused():
    error = ValueError(
        "Detected unsupported operations when trying to compile graph f on XLA_CPU_JIT: "
        "CropAndResize (No registered 'CropAndResize' OpKernel for XLA_CPU_JIT devices), "
        "NonMaxSuppressionV3 (No registered 'NonMaxSuppressionV3' OpKernel), "
        "CropAndResize (No registered 'CropAndResize' OpKernel)")
    assert cpu_settings.error_detail(error) == (
        "unsupported by XLA: CropAndResize, NonMaxSuppressionV3")
    assert cpu_settings.error_detail(RuntimeError("first line\nsecond")) == "first line"
    assert cpu_settings.error_detail(RuntimeError()) == ""


def test_head_models_take_pooled_features_of_the_config_sizes():
    config, _ = cpu_settings.make_configs("float32", "resnet50", 2, 128, True)
    mask = cpu_settings.head_model(config, "mask", 10)
    pool, depth = config.MASK_POOL_SIZE, config.TOP_DOWN_PYRAMID_SIZE
    assert tuple(mask.input_shape) == (None, 10, pool, pool, depth)
    assert tuple(mask.output_shape) == (None, 10, 2 * pool, 2 * pool, config.NUM_CLASSES)
    assert "roi_align_mask" not in [layer.name for layer in mask.layers]
    classifier = cpu_settings.head_model(config, "classifier", config.TRAIN_ROIS_PER_IMAGE)
    rois = config.TRAIN_ROIS_PER_IMAGE
    assert tuple(classifier.input_shape) == (None, rois, config.POOL_SIZE, config.POOL_SIZE,
                                             depth)
    assert [tuple(s) for s in classifier.output_shape] == [
        (None, rois, config.NUM_CLASSES), (None, rois, config.NUM_CLASSES),
        (None, rois, config.NUM_CLASSES, 4)]


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_quick_run_has_every_row_with_positive_seconds(tmp_path):
    out = tmp_path / "cpu.json"
    rows = cpu_settings.main(["--quick", "--batch", "1", "--repeats", "1", "--threads", "1,1",
                              "--onednn", "0", "--json", str(out)])
    xla_parts = ["backbone_fwd", "backbone_fwd_bwd", "mask_fwd_bwd", "classifier_fwd_bwd",
                 "train_step_heads"]
    expected = (
        [("xla", p, s) for p in xla_parts for s in ("jit_compile=False", "jit_compile=True")]
        + [("threads", p, s) for s in ("default", "intra=1 inter=1")
           for p in ("heads_step", "detect")]
        + [("onednn", p, "TF_ENABLE_ONEDNN_OPTS=0") for p in ("heads_step", "detect")])
    assert [(r["section"], r["part"], r["setting"]) for r in rows] == expected
    for r in rows:
        if r["error"] is not None:
            # Only XLA on the whole step may fail (ROIAlign's CropAndResize, NMS): recorded.
            assert (r["part"], r["setting"]) == ("train_step_heads", "jit_compile=True"), r
            assert r["seconds"] is None and r["detail"]
            continue
        assert math.isfinite(r["seconds"]) and r["seconds"] > 0, r
        assert math.isfinite(r["first_s"]) and r["first_s"] > 0, r
        assert r["ratio"] is not None and r["ratio"] > 0, r
        if r["setting"] in ("jit_compile=False", "default"):
            assert r["ratio"] == 1.0
    # The pool sizes and the oneDNN switch reached the subprocesses.
    by_setting = {(r["part"], r["setting"]): r for r in rows if r["section"] != "xla"}
    assert (by_setting["heads_step", "intra=1 inter=1"]["intra"],
            by_setting["heads_step", "intra=1 inter=1"]["inter"]) == (1, 1)
    assert (by_setting["detect", "default"]["intra"], by_setting["detect", "default"]["inter"]
            ) == (0, 0)
    assert by_setting["heads_step", "TF_ENABLE_ONEDNN_OPTS=0"]["onednn"] == "0"
    report = json.loads(out.read_text())
    assert report["rows"] == rows
    assert report["cores"] >= 1 and report["cpu_flags"]
