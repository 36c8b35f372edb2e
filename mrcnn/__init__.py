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
"""

import importlib.abc
import importlib.util
import sys

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


restore_numpy_aliases()
_explain_missing_tensorflow()
