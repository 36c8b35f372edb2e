"""Quiet by default: mrcnn/__init__.py (TensorFlow's C++ and start-up lines), the load report
as one INFO line (mrcnn/checkpoint/report.py), and log lines through the progress bar
(mrcnn/tools/progress.py)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest

from mrcnn.checkpoint.report import LoadReport
from mrcnn.tools.progress import ProgressBar

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

SCRIPT = """
import sys
sys.path.insert(0, "tests")
import numpy as np
import mrcnn
from mrcnn import model as modellib
from tiny_config import TinyConfig

class C(TinyConfig):
    IMAGES_PER_GPU = 1

m = modellib.MaskRCNN("inference", C(), sys.argv[1])
image = np.full((128, 128, 3), 100, np.uint8)
image[30:90, 40:100] = (200, 30, 30)
r = m.detect([image])[0]
print("detections", len(r["class_ids"]))
"""


def _run(tmp_path, **env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "MRCNN_TF_LOGS")}
    env.update(env_changes)
    env["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_script_importing_mrcnn_first_has_no_tensorflow_noise(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "detections" in done.stdout
    # Measured without the switch: 2 oneDNN lines, 2 absl lines, the CPU feature line and
    # 8 grappler lines of ~1 KB for this model.
    for noise in ("op_level_cost_estimator", "PredictCost", "oneDNN", "absl::InitializeLog",
                  "cpu_feature_guard", "type_inference"):
        assert noise not in done.stderr, done.stderr[:2000]


def test_the_switch_keeps_tensorflows_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import mrcnn, tensorflow"
    quiet = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env={**env, "PYTHONPATH": ROOT})
    loud = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**env, "PYTHONPATH": ROOT, "MRCNN_TF_LOGS": "1"})
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "oneDNN" not in quiet.stderr
    assert "oneDNN custom operations are on" in loud.stderr


def test_a_user_setting_of_the_log_level_is_kept():
    code = "import os, mrcnn; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "0"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.stdout.strip() == "0", done.stderr
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.stdout.strip() == "2", done.stderr


def test_load_report_is_one_info_line_with_the_list_at_debug(caplog):
    report = LoadReport(loaded=["conv1", "bn_conv1"], missing_in_file=["fc"], source="w.h5")
    log = logging.getLogger("test_quiet.report")
    with caplog.at_level(logging.INFO, logger="test_quiet.report"):
        report.log(log)
    assert [r.getMessage() for r in caplog.records] == [
        "Weights from w.h5: loaded 2, mismatched 0, missing in file 1, unused in file 0, "
        "excluded 0"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="test_quiet.report"):
        report.log(log)
    assert len(caplog.records) == 2
    assert "loaded (2): conv1, bn_conv1" in caplog.records[1].getMessage()


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_do_not_break_the_progress_bar():
    stream = _Tty()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        with ProgressBar(4, "detect", stream=stream) as bar:
            bar.update(1)
            logging.getLogger("mrcnn.test").info("a log line")
            bar.update(3)
        assert handler in root.handlers  # put back
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = stream.getvalue()
    # The bar's line is cleared, the record gets its own line, the bar is drawn again.
    assert "1/4" in text and "\r\033[Ka log line\n\rdetect [" in text
    assert text.endswith("4/4  " + text.rsplit("4/4  ", 1)[1]) and text.endswith(" s\n")


def test_the_bar_without_a_terminal_writes_ten_percent_steps():
    stream = io.StringIO()
    with ProgressBar(100, "evaluate", stream=stream) as bar:
        for _ in range(100):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("evaluate [") and "100/100" in lines[-1]
    assert "\r" not in stream.getvalue()
