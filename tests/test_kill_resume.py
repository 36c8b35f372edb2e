"""kill -9, for real: a training process is SIGKILLed 22 times, at random moments
and while it writes checkpoints; after every kill `find_last()` names a complete checkpoint
that loads, the next process continues the run from it, and no temp file outlives the next
run's start."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tiny_config import TinyConfig

from mrcnn import model as modellib
from mrcnn.fileio import is_temp_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class KillConfig(TinyConfig):
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 0


# One training process: continue the run from find_last() (if any) for `epochs` more epochs.
CHILD = """
import logging, sys
sys.path[:0] = [{repo!r}, {tests!r}]
from test_kill_resume import KillConfig
from mrcnn import model as modellib
from samples.shapes.shapes import ShapesDataset
data = ShapesDataset()
data.load_shapes(3, 128, 128, seed=2)
data.prepare()
model = modellib.MaskRCNN("training", KillConfig(), {model_dir!r})
try:
    model.load_weights(model.find_last(), by_name=True)
except FileNotFoundError:
    pass
print("START", model.epoch, flush=True)
model.train(data, None, 0.001, epochs=model.epoch + {epochs}, layers="heads", workers=1,
            verbose=0)
print("DONE", model.epoch, flush=True)
"""


def _child(model_dir, epochs):
    code = CHILD.format(repo=REPO, tests=os.path.join(REPO, "tests"), model_dir=model_dir,
                        epochs=epochs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _temp_files(model_dir):
    found = []
    for folder, _, names in os.walk(model_dir):
        found += [os.path.join(folder, n) for n in names if is_temp_name(n)]
    return found


def _kill_during_write(proc, model_dir, timeout, nth=2):
    """SIGKILL `proc` inside its `nth` checkpoint write (the `nth` new temp file), or at
    `timeout`. The first write completes, so the run advances an epoch per process. Returns
    whether the kill did land inside the write (its temp file is left over)."""
    before = set(_temp_files(model_dir))  # the previous kill's leftover, removed at start
    seen = set()
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        seen |= set(_temp_files(model_dir)) - before
        if len(seen) >= nth:
            time.sleep(random.uniform(0, 0.02))  # somewhere inside the write
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return bool(set(_temp_files(model_dir)) - before)


@pytest.mark.slow
def test_twenty_sigkills_during_training_and_checkpoint_writes(tmp_path):
    rng = random.Random(11)
    random.seed(12)
    model_dir = str(tmp_path)
    checker = modellib.MaskRCNN("training", KillConfig(), model_dir)
    kills, during_write, epochs_seen = 0, 0, []
    # 22 kills: 10 inside checkpoint writes, 12 at random moments (import, build, tracing,
    # training steps, writes); each process lives ~15 s to its first write on 2 cores.
    schedule = ["write", "random"] * 10 + ["random"] * 2
    for how in schedule:
        proc = _child(model_dir, epochs=50)
        if how == "write":
            during_write += _kill_during_write(proc, model_dir, timeout=180)
        else:
            time.sleep(rng.uniform(1.0, 25.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        kills += 1
        # At most the one write the kill interrupted is left over: earlier leftovers were
        # removed when this process started its run or its next write.
        assert len(_temp_files(model_dir)) <= 1
        try:
            last = checker.find_last()
        except FileNotFoundError:
            continue  # killed before the first checkpoint
        report = checker.load_weights(last, by_name=True)
        assert not report.missing_in_file and not report.mismatched, last
        assert all(np.all(np.isfinite(w.numpy())) for w in checker.keras_model.weights)
        epochs_seen.append(checker.epoch)
    assert kills == 22 and during_write >= 7
    assert epochs_seen == sorted(epochs_seen) and epochs_seen and epochs_seen[-1] >= 10
    # A last, undisturbed process continues from the newest checkpoint and cleans up.
    proc = _child(model_dir, epochs=1)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    start = int(out.split(b"START")[1].split()[0])
    assert start == epochs_seen[-1]
    assert checker.find_last().endswith(f"mask_rcnn_tiny_{start + 1:04d}.h5")
    assert _temp_files(model_dir) == []
    print(f"kills={kills} during_write={during_write} epochs={epochs_seen}")
