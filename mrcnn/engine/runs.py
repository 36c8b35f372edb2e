"""Run directories and checkpoint names, matterport's scheme (pure Python, no TensorFlow).

A run lives in `{model_dir}/{name}{YYYYmmddTHHMM}/` and writes one checkpoint per epoch,
`mask_rcnn_{name}_{epoch:04d}.h5` (1-based epochs). Loading a checkpoint whose path follows
this pattern continues that run: same directory, next epoch.

A named run (`mrcnn train --run-name NAME` or `--output-dir DIR`) lives in a folder of the
user's choice, with the same checkpoint names inside and the run's `config.json`
(RUN_CONFIG_FILE); a checkpoint in a folder holding that file continues its run too.
"""

from __future__ import annotations

import datetime
import errno
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

COCO_WEIGHTS_FILE = "mask_rcnn_coco.h5"
IMAGENET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
# The layers whose weight shapes depend on NUM_CLASSES: matterport's exclude list for
# fine-tuning COCO weights on another class count.
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")
COCO_NUM_CLASSES = 81  # background + COCO's 80 classes
# The resolved config a run writes to its folder at start; it also marks a named run folder.
RUN_CONFIG_FILE = "config.json"
_RUN_NAME = re.compile(r"^[\w][\w.+-]*$")

_RUN_DIR = r"(?P<name>[\w-]+?)(?P<stamp>\d{8}T\d{4})"
_CHECKPOINT = r"mask_rcnn_(?P<cname>[\w-]+)_(?P<epoch>\d{4})\.h5"
_CHECKPOINT_PATH = re.compile(r".*[/\\]" + _RUN_DIR + r"[/\\]" + _CHECKPOINT + r"$")


@dataclass(frozen=True)
class RunInfo:
    """Where a run writes: its directory, checkpoint template and the epoch to start from."""

    log_dir: str
    checkpoint_path: str  # with an {epoch:04d} field
    epoch: int  # number of epochs already done (0-based start epoch for Keras)


def run_dir_name(name: str, when: datetime.datetime) -> str:
    """`{name}{YYYYmmddTHHMM}` with the name lower-cased, as matterport."""
    return f"{name.lower()}{when:%Y%m%dT%H%M}"


def checkpoint_template(log_dir: str, name: str) -> str:
    """`{log_dir}/mask_rcnn_{name}_{epoch:04d}.h5`."""
    return os.path.join(log_dir, f"mask_rcnn_{name.lower()}_" + "{epoch:04d}.h5")


def best_checkpoint_path(log_dir: str, name: str) -> str:
    """`{log_dir}/mask_rcnn_{name}_best.h5`, the file BestCheckpoint keeps."""
    return os.path.join(log_dir, f"mask_rcnn_{name.lower()}_best.h5")


def checkpoint_file_pattern(name: str | None = None) -> re.Pattern:
    """Matches the epoch checkpoint file names `mask_rcnn_{name}_NNNN.h5` of config `name`
    (of any config when None); the epoch is the named group `epoch`."""
    stem = re.escape(name.lower()) if name else r"[\w-]+"
    return re.compile(rf"^mask_rcnn_{stem}_(?P<epoch>\d{{4}})\.h5$")


def log_dir_of(source: object) -> str:
    """A run folder given as a path or as an object with `log_dir` (MaskRCNN), read at use
    time (a MaskRCNN's log_dir changes when a checkpoint is loaded)."""
    return os.fspath(getattr(source, "log_dir", source))


def run_info(model_dir: str, name: str, model_path: str | None = None,
             now: datetime.datetime | None = None) -> RunInfo:
    """The run to write to: a new one stamped `now`, or the run `model_path` belongs to.

    Args:
        model_dir: the parent directory of all runs.
        name: the config NAME.
        model_path: a checkpoint being loaded; when it matches the naming scheme, training
            continues in its run directory at the epoch after the checkpoint's.
        now: the time stamp of a new run (default: the current time).
    """
    epoch = 0
    when = now or datetime.datetime.now()
    if model_path:
        m = _CHECKPOINT_PATH.match(os.path.abspath(model_path))
        if m:
            when = datetime.datetime.strptime(m.group("stamp"), "%Y%m%dT%H%M")
            # Checkpoint epochs are 1-based, Keras' are 0-based: epoch N done -> start at N.
            epoch = int(m.group("epoch"))
            log_dir = os.path.dirname(os.path.abspath(model_path))
            return RunInfo(log_dir, checkpoint_template(log_dir, name), epoch)
        named = _named_run_checkpoint(model_path)
        if named is not None:
            return named_run_info(os.path.dirname(os.path.abspath(model_path)), name, named)
    log_dir = os.path.join(model_dir, run_dir_name(name, when))
    return RunInfo(log_dir, checkpoint_template(log_dir, name), epoch)


def _named_run_checkpoint(model_path: str) -> int | None:
    """The epoch of a checkpoint inside a named run folder (one holding RUN_CONFIG_FILE)."""
    m = checkpoint_file_pattern().match(os.path.basename(model_path))
    folder = os.path.dirname(os.path.abspath(model_path))
    if m and os.path.isfile(os.path.join(folder, RUN_CONFIG_FILE)):
        return int(m.group("epoch"))
    return None


def check_run_name(run_name: str) -> str:
    """`run_name` when it is a plain folder name (letters, digits, `_`, `.`, `+`, `-`).

    Raises:
        ValueError: a path, an empty name or other characters.
    """
    if not isinstance(run_name, str) or not _RUN_NAME.match(run_name):
        raise ValueError(f"a run name must be a plain folder name (letters, digits, _ . + -), "
                         f"got {run_name!r}")
    return run_name


def named_run_info(log_dir: str, name: str, epoch: int = 0) -> RunInfo:
    """A run in the folder `log_dir` chosen by the user, with matterport's checkpoint names
    for config `name` inside, starting after `epoch` epochs."""
    log_dir = os.path.abspath(log_dir)
    return RunInfo(log_dir, checkpoint_template(log_dir, name), epoch)


def last_checkpoint_in(run_dir: str) -> str:
    """The epoch checkpoint of the highest epoch in one run folder (any config name).

    Raises:
        FileNotFoundError: the folder does not exist or holds no `mask_rcnn_*_NNNN.h5`.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(errno.ENOENT, f"Run folder {run_dir!r} does not exist")
    pattern = checkpoint_file_pattern()
    found = sorted((int(m.group("epoch")), entry) for entry in os.listdir(run_dir)
                   if (m := pattern.match(entry)))
    if not found:
        raise FileNotFoundError(errno.ENOENT, f"No checkpoint (mask_rcnn_NAME_NNNN.h5) in "
                                f"{run_dir!r}")
    return os.path.join(run_dir, found[-1][1])


def list_checkpoints(run_dir: str, name: str) -> list[str]:
    """The checkpoints of one run for config `name`, ordered by epoch."""
    pattern = checkpoint_file_pattern(name)
    found = []
    for entry in os.listdir(run_dir):
        m = pattern.match(entry)
        if m and os.path.isfile(os.path.join(run_dir, entry)):
            found.append((int(m.group("epoch")), os.path.join(run_dir, entry)))
    return [path for _, path in sorted(found)]


def find_last(model_dir: str, name: str) -> str:
    """The newest checkpoint of the newest run of config `name` under `model_dir`.

    Runs are ordered by their time stamp. A newest run without any checkpoint yet (just
    started, or crashed in its first epoch) does not hide an older run that has one.

    Raises:
        FileNotFoundError: no run directory for `name`, or no checkpoint in any of them.
    """
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(errno.ENOENT, f"Model directory {model_dir!r} does not exist")
    run_pattern = re.compile(rf"{re.escape(name.lower())}(\d{{8}}T\d{{4}})$")
    runs = sorted((m.group(1), entry) for entry in os.listdir(model_dir)
                  if (m := run_pattern.match(entry))
                  and os.path.isdir(os.path.join(model_dir, entry)))
    if not runs:
        raise FileNotFoundError(
            errno.ENOENT, f"Could not find a run directory for config {name!r} under "
            f"{model_dir!r} (expected {name.lower()}YYYYmmddTHHMM)")
    for _, entry in reversed(runs):
        checkpoints = list_checkpoints(os.path.join(model_dir, entry), name)
        if checkpoints:
            return checkpoints[-1]
    raise FileNotFoundError(
        errno.ENOENT, f"Could not find weight files (mask_rcnn_{name.lower()}_NNNN.h5) in any "
        f"run directory of {name!r} under {model_dir!r}")


def resolve_weights_file(weights: str, model_dir: str) -> str:
    """The file behind "coco", "imagenet" or a path (nothing is downloaded).

    "coco" is matterport's `mask_rcnn_coco.h5`, looked for at $MRCNN_COCO_WEIGHTS, in the
    working directory and in `model_dir`. "imagenet" is Keras' ResNet-50 ImageNet file
    (IMAGENET_WEIGHTS_FILE), looked for at $MRCNN_IMAGENET_WEIGHTS, in ~/.keras/models and in
    the working directory. Any other string is returned as it is.

    Raises:
        FileNotFoundError: "coco" or "imagenet" is not on disk, saying where to put it.
    """
    if weights == "coco":
        candidates = [os.environ.get("MRCNN_COCO_WEIGHTS", ""), COCO_WEIGHTS_FILE,
                      os.path.join(model_dir, COCO_WEIGHTS_FILE)]
        hint = (f"put matterport's {COCO_WEIGHTS_FILE} in the working directory or in "
                f"{model_dir!r}, or set MRCNN_COCO_WEIGHTS to its path")
    elif weights == "imagenet":
        candidates = [os.environ.get("MRCNN_IMAGENET_WEIGHTS", ""),
                      os.path.join(os.path.expanduser("~"), ".keras", "models",
                                   IMAGENET_WEIGHTS_FILE), IMAGENET_WEIGHTS_FILE]
        hint = (f"put {IMAGENET_WEIGHTS_FILE} in ~/.keras/models or set "
                "MRCNN_IMAGENET_WEIGHTS to its path")
    else:
        return weights
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{weights} weights not found: {hint} (this project does not "
                            "download files)")


def resolve_weights(weights: str, model_dir: str, name: str) -> str | None:
    """The one reading of a `weights` argument: "none", "last", "coco", "imagenet" or a path.

    Keywords are case-insensitive. "none" gives None (start from random weights); "last" the
    newest checkpoint of the newest run named `name` under `model_dir` (`find_last`);
    "coco" and "imagenet" the file on disk (`resolve_weights_file`); anything else is a path.

    Raises:
        FileNotFoundError: no checkpoint for "last", no file for "coco"/"imagenet", or the
            path does not exist.
    """
    key = weights.lower()
    if key == "none":
        return None
    if key == "last":
        return find_last(model_dir, name)
    if key in ("coco", "imagenet"):
        return resolve_weights_file(key, model_dir)
    if not os.path.exists(weights):
        raise FileNotFoundError(f"weights file {weights!r} not found")
    return weights


def exclude_for(weights: str, exclude: str | Sequence[str] | None,
                num_classes: int) -> list[str] | None:
    """The exclude list of a by-name load.

    Args:
        weights: the `weights` argument ("coco", a path, ...).
        exclude: "heads" (HEAD_LAYERS), a comma-separated string or a list of layer names or
            regexes, or None.
        num_classes: the model's NUM_CLASSES.

    Returns:
        The patterns to exclude, or None. Without an explicit `exclude`, COCO weights loaded
        into a model of another class count exclude HEAD_LAYERS (their shapes differ).
    """
    if isinstance(exclude, str):
        if exclude == "heads":
            return list(HEAD_LAYERS)
        return [p.strip() for p in exclude.split(",") if p.strip()] or None
    if exclude:
        return list(exclude)
    if weights.lower() == "coco" and num_classes != COCO_NUM_CLASSES:
        logger.info("NUM_CLASSES=%d differs from COCO's %d: not loading %s", num_classes,
                    COCO_NUM_CLASSES, ", ".join(HEAD_LAYERS))
        return list(HEAD_LAYERS)
    return None
