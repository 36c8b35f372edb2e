"""mrcnn: Mask R-CNN for object detection and instance segmentation on TF 2.21 / Keras 3.

The numpy side (config, boxes, masks, anchors, image, dataset, targets, metrics) imports
no TensorFlow; `mrcnn.model` builds the networks.

Importing this package does two small things and imports nothing heavy (numpy only):

- It puts back the numpy 1 aliases that imgaug 0.4.0 reads (`np.sctypes`, `np.complex`),
  only where numpy 2 removed them, so that `import mrcnn` followed by a plain
  `from imgaug import augmenters as iaa` works (see `mrcnn.data.augment.restore_numpy_aliases`).
  imgaug itself is not imported.
- When TensorFlow or Keras is not installed, it registers a finder that turns the bare
  "No module named 'tensorflow'" of a later import into one that says how to install mrcnn
  with TensorFlow (`pip install "mrcnn[cpu]"` or `"mrcnn[gpu]"`). Nothing is registered when
  both are installed.
- Quiet TensorFlow: unless the environment sets `MRCNN_TF_LOGS=1`, it sets
  `TF_CPP_MIN_LOG_LEVEL=2` (only when the user has not set it: this hides TensorFlow's C++
  INFO and WARNING lines, among them grappler's "op_level_cost_estimator ... Error in
  PredictCost() for the op: CropAndResize" repeated for every ROIAlign op) and, while
  TensorFlow itself is being imported, drops the start-up lines that no log level controls
  ("oneDNN custom operations are on ...", "All log messages before absl::InitializeLog()
  ..."); any other line written during that import is passed on. Nothing happens when
  TensorFlow was imported before mrcnn.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile

from mrcnn.data.augment import restore_numpy_aliases

__version__ = "0.1.0"

# The distributions that provide the modules mrcnn's networks need; TensorFlow comes with an
# extra because tensorflow-cpu and tensorflow (GPU) clash when both are installed.
_NETWORK_MODULES = ("tensorflow", "keras")
MISSING_TENSORFLOW = (
    "mrcnn's networks (mrcnn.model, mrcnn.modeling, mrcnn.engine, ...) need TensorFlow 2.21 "
    "and Keras 3, which are installed with an extra: pip install \"mrcnn[cpu]\" (CPU only) or "
    "pip install \"mrcnn[gpu]\" (Linux with an NVIDIA GPU; CUDA libraries from pip). "
    "The numpy side (mrcnn.config, mrcnn.utils, mrcnn.data, mrcnn.visualize) works without them.")


class _MissingTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Last finder on `sys.meta_path`: reached only when no other finder found `tensorflow`
    or `keras`; raises ModuleNotFoundError (an ImportError, as before) with install advice."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _NETWORK_MODULES:
            raise ModuleNotFoundError(f"No module named {fullname!r}. {MISSING_TENSORFLOW}",
                                      name=fullname)
        return None


def _explain_missing_tensorflow() -> None:
    """Append `_MissingTensorFlowFinder` to `sys.meta_path` when TensorFlow or Keras is absent.

    Finding a spec imports nothing; once a module is imported the check is skipped.
    """
    if any(isinstance(f, _MissingTensorFlowFinder) for f in sys.meta_path):
        return
    for name in _NETWORK_MODULES:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.meta_path.append(_MissingTensorFlowFinder())
            return


# The switch that keeps TensorFlow's start-up and C++ log lines ("1", "true" or "yes").
TF_LOGS_ENV = "MRCNN_TF_LOGS"
# Start-up lines TensorFlow writes to stderr while it is imported, whatever the log level.
_STARTUP_NOISE = re.compile(
    r"(All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc.*This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .*rebuild TensorFlow)")


def tf_logs_wanted() -> bool:
    """True when the environment asks for TensorFlow's own logs (`MRCNN_TF_LOGS=1`)."""
    return os.environ.get(TF_LOGS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class _FilteredStartupLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with file descriptor 2 sent to a temporary file, then
    writes back every captured line except the `_STARTUP_NOISE` ones."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreter)
            self.loader.exec_module(module)
            return
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                module.__loader__ = self.loader
                if getattr(module, "__spec__", None) is not None:
                    module.__spec__.loader = self.loader
                captured.seek(0)
                kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                        if not _STARTUP_NOISE.search(line)]
                if kept:
                    os.write(2, ("\n".join(kept) + "\n").encode("utf-8", "replace"))


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """First finder on `sys.meta_path`, for `tensorflow` only: finds it as Python would and
    wraps its loader in `_FilteredStartupLoader`; removes itself after the first use."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        _remove_finder(_QuietTensorFlowFinder)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _FilteredStartupLoader(spec.loader)
        return spec


def _remove_finder(kind: type) -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, kind)]


def _quiet_tensorflow() -> None:
    """Set `TF_CPP_MIN_LOG_LEVEL=2` (if unset) and filter TensorFlow's start-up lines, unless
    `MRCNN_TF_LOGS=1` or TensorFlow is already imported (its settings are fixed then)."""
    if tf_logs_wanted() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


restore_numpy_aliases()
_explain_missing_tensorflow()
_quiet_tensorflow()
