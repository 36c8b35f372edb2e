"""Memory over repeated `train()` calls in one process (matterport's heads, then 4+, then all):
after a first round has traced every preset, further rounds must not grow the RSS."""

import gc

import numpy as np
import pytest
from tiny_config import TinyConfig

from mrcnn import model as modellib
from mrcnn.engine.train_loop import release_compiled_state
from samples.shapes.shapes import ShapesDataset


def rss_mib() -> float:
    """The resident set size of this process, MiB (Linux)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmRSS in /proc/self/status")


class MemoryConfig(TinyConfig):
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


def registered_functions() -> int:
    from tensorflow.python.eager import context

    return len(context.context().list_function_names())


def test_release_compiled_state_drops_functions_and_optimizer():
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
    model.evaluate(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
    assert model.train_function is not None and model.optimizer is not None
    assert isinstance(release_compiled_state(model), int)
    assert model.train_function is None and model.optimizer is None
    assert model.test_function is None
    # Compiling again works and trains (a new optimizer, new functions).
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
    assert model.optimizer.iterations.numpy() == 1


@pytest.mark.slow
def test_repeated_train_calls_do_not_accumulate_graph_functions_or_memory(tmp_path):
    data = ShapesDataset()
    data.load_shapes(4, 128, 128, seed=1)
    data.prepare()
    model = modellib.MaskRCNN("training", MemoryConfig(), str(tmp_path))
    counts, rss = [], []
    for epoch in range(1, 5):
        model.train(data, data, 0.001, epochs=epoch, layers="heads", workers=1, verbose=0)
        gc.collect()
        counts.append(registered_functions())
        rss.append(rss_mib())
    # Before the fix every call left its ~100 graph functions registered (172, 274, 376);
    # with it: 172, 172, 172, 172 (RSS 1205, 1273, 1344, 1409 MiB: still +65 MiB a call).
    assert counts[-1] <= counts[0] + 10, counts
    print(f"graph functions {counts}, RSS MiB {[round(r) for r in rss]}")


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 11, not solved yet: RSS still grows ~450 MiB per "
                          "heads/4+/all round on the tiny config although the graph "
                          "functions are released (allocator or TF runtime caches)",
                   strict=False)
def test_repeated_train_rounds_do_not_grow_rss(tmp_path):
    data = ShapesDataset()
    data.load_shapes(4, 128, 128, seed=1)
    data.prepare()
    model = modellib.MaskRCNN("training", MemoryConfig(), str(tmp_path))
    presets = ("heads", "4+", "all")
    rss = []
    epoch = 0
    for _ in range(3):
        for layers in presets:
            epoch += 1
            model.train(data, data, 0.001, epochs=epoch, layers=layers, workers=1, verbose=0)
        gc.collect()
        rss.append(rss_mib())
    # Measured (2 shared cores, TinyConfig) before any fix: 1197 -> 1753 -> 2063 -> 2104 ->
    # 2277 MiB over five calls; with release_compiled_state: 1200, 1703, 2003 (round 1),
    # 1989, 2168, 2452 (round 2). 150 MiB would cover allocator noise.
    assert rss[2] - rss[0] < 150, rss
