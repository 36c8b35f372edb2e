"""The package's shape: imports point one way, the numpy side stays TensorFlow-free, every
custom layer is registered, importing is free of side effects, modules stay small."""

import ast
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest

import mrcnn

PACKAGE_DIR = os.path.dirname(mrcnn.__file__)
MAX_LINES = 450

# The numpy side: importing any of these must not import TensorFlow or Keras.
NUMPY_SIDE = [
    "mrcnn.config", "mrcnn.utils", "mrcnn.visualize", "mrcnn.fileio",
    "mrcnn.structures.boxes", "mrcnn.structures.masks", "mrcnn.structures.anchors",
    "mrcnn.structures.image", "mrcnn.structures.image_meta", "mrcnn.structures.checks",
    "mrcnn.data.dataset", "mrcnn.data.ground_truth", "mrcnn.data.targets",
    "mrcnn.data.augment", "mrcnn.data.formats", "mrcnn.data.formats.coco",
    "mrcnn.data.formats.via", "mrcnn.evaluation", "mrcnn.evaluation.metrics",
    "mrcnn.evaluation.evaluator", "mrcnn.evaluation.coco", "mrcnn.engine.runs",
    "mrcnn.evaluation.runner", "mrcnn.vis.drawing", "mrcnn.vis.figures", "mrcnn.vis.stats",
    "mrcnn.vis.labels", "mrcnn.vis.curves",
]
# Layers of the design, lowest first: a module may import only from its own layer or below.
LAYERS = [
    ("mrcnn.fileio", "mrcnn.structures", "mrcnn.config"),
    ("mrcnn.data",),
    ("mrcnn.evaluation", "mrcnn.vis", "mrcnn.checkpoint", "mrcnn.modeling"),
    ("mrcnn.engine",),
    ("mrcnn.export", "mrcnn.distribute"),
    ("mrcnn.model", "mrcnn.utils", "mrcnn.visualize"),
    ("mrcnn.tools", "mrcnn.__main__"),
]


def all_modules() -> dict[str, str]:
    """{dotted module name: file path} of every module of the package."""
    out = {}
    for root, _, files in os.walk(PACKAGE_DIR):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
            out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


MODULES = all_modules()


def imported_modules(path: str, module: str) -> set[str]:
    """Every mrcnn module `path` imports, at module level or inside functions."""
    tree = ast.parse(open(path).read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            # `from pkg import sub` imports the submodule when one has that name.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        found.update(n for n in names if n == "mrcnn" or n.startswith("mrcnn."))
    found.discard(module)
    return {n for n in found if n in MODULES}


GRAPH = {m: imported_modules(p, m) for m, p in MODULES.items()}


def layer_of(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} belongs to no layer of the design; add it to LAYERS")


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_imports_point_one_way():
    wrong = [f"{m} (layer {layer_of(m)}) imports {n} (layer {layer_of(n)})"
             for m, deps in GRAPH.items() if m != "mrcnn" for n in deps
             if n != "mrcnn" and layer_of(n) > layer_of(m)]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_import_graph_is_read_correctly():
    # Function-level imports count: the facade imports the predictor at module level and the
    # command line builds the model inside a function.
    assert "mrcnn.engine.predictor" in GRAPH["mrcnn.engine.mean_ap"]
    assert "mrcnn.model" in GRAPH["mrcnn.tools.commands"] or any(
        "mrcnn.model" in GRAPH[m] for m in GRAPH if m.startswith("mrcnn.tools."))


def test_checkpoint_package_never_imports_the_model_facade():
    for m, deps in GRAPH.items():
        if m.startswith("mrcnn.checkpoint"):
            assert not any(d in ("mrcnn.model", "mrcnn.engine") or d.startswith("mrcnn.engine.")
                           for d in deps), (m, deps)


def test_numpy_side_does_not_import_tensorflow():
    code = ("import importlib, sys\n"
            "bad = []\n"
            f"for name in {NUMPY_SIDE!r}:\n"
            "    importlib.import_module(name)\n"
            "    if 'tensorflow' in sys.modules or 'keras' in sys.modules:\n"
            "        bad.append(name); break\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"imports TensorFlow: {out.stdout}"
    assert set(NUMPY_SIDE) <= set(MODULES)


def test_importing_visualize_leaves_the_matplotlib_backend_alone():
    code = ("import matplotlib\n"
            "import mrcnn.visualize, mrcnn.vis.drawing, mrcnn.vis.stats, mrcnn.vis.figures\n"
            "print(matplotlib.rcParams._get_backend_or_none())\n"
            "matplotlib.use('svg')\n"
            "import importlib; importlib.reload(mrcnn.vis.figures)\n"
            "importlib.reload(mrcnn.vis.drawing)\n"
            "print(matplotlib.get_backend())\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "svg"]


def test_every_custom_layer_is_registered():
    import keras

    import mrcnn.modeling.layers as layers_pkg

    classes = []
    for info in pkgutil.iter_modules(layers_pkg.__path__):
        module = importlib.import_module(f"mrcnn.modeling.layers.{info.name}")
        classes += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if issubclass(obj, keras.layers.Layer) and obj.__module__ == module.__name__]
    assert len(classes) >= 13
    for cls in classes:
        name = keras.saving.get_registered_name(cls)
        assert name == f"mrcnn>{cls.__name__}", (cls, name)
        assert keras.saving.get_registered_object(name) is cls


def test_no_library_module_is_over_the_house_size():
    long = {m: n for m, p in MODULES.items()
            if (n := sum(1 for _ in open(p))) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
