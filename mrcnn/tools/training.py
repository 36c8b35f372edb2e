"""The pieces of `mrcnn train` around `MaskRCNN.train`: resuming a run as it was, the run
folder, the callbacks of the command's flags, and the files a run writes beside its checkpoints.

A run folder holds, besides matterport's `mask_rcnn_{name}_{epoch:04d}.h5` checkpoints:

- `config.json`: the resolved config, written (atomically) when training starts; it is a
  config file too (`--config run/config.json`).
- `run.json`: the command's options (data, schedule, evaluation, checkpoints), so that
  `--resume` needs nothing else.
- `metrics.json`: the epoch values over the whole run (`mrcnn.engine.callbacks.EpochLog`),
  drawn into `training_curves.png` at the end.

Each checkpoint also carries the training state (`mrcnn.engine.train_loop.checkpoint_metadata`:
layers, learning rate, target epoch, schedule), which wins over `run.json` when resuming.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

from mrcnn.engine import runs
from mrcnn.tools.common import DEFAULT_CONFIG, UsageError, load_config_class, write_json
from mrcnn.tools.models import read_checkpoint_metadata

logger = logging.getLogger(__name__)

RUN_OPTIONS_FILE = "run.json"
CURVES_FILE = "training_curves.png"
# Options `--resume` restores when they are not given again (their parser default is None).
RESUMABLE = ("layers", "lr", "epochs", "augment", "lr_schedule", "lr_steps", "lr_gamma",
             "warmup_steps", "warmup_epochs", "eval_period", "eval_limit", "keep", "best",
             "log_every", "tb_images")
# The dataset options, restored together when no dataset is given with --resume.
DATASET_OPTIONS = ("dataset_format", "train", "train_images", "val", "val_images", "dataset",
                   "class_name", "class_attribute", "skip_invalid")
_PATH_OPTIONS = ("train", "train_images", "val", "val_images", "dataset")
_DERIVED = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")


# ---------------------------------------------------------------------------- resume
def resume_checkpoint(args: argparse.Namespace, name: str) -> str:
    """The checkpoint `--resume` continues from.

    `--resume` alone: the newest checkpoint of `--output-dir` or `LOGS/--run-name` when given,
    else of the newest run of config `name` under `--logs` (matterport's find_last). A folder:
    its newest checkpoint. A file: that checkpoint.

    Raises:
        FileNotFoundError: no such run folder, file or checkpoint.
    """
    target = args.resume
    if target == "last":
        folder = run_folder(args)
        if folder is None:
            return runs.find_last(args.logs, name)
        return runs.last_checkpoint_in(folder)
    if os.path.isdir(target):
        return runs.last_checkpoint_in(target)
    if not os.path.isfile(target):
        raise FileNotFoundError(f"--resume {target!r}: no such run folder or checkpoint")
    return target


def _options_of_training(training: dict | None) -> dict[str, Any]:
    """The command's options behind a checkpoint's training record."""
    if not training:
        return {}
    out = {"layers": training.get("layers"), "lr": training.get("learning_rate"),
           "epochs": training.get("epochs")}
    schedule = training.get("lr_schedule")
    if schedule and schedule.get("unit") == "epoch":
        out.update(lr_schedule=schedule.get("decay"), lr_steps=schedule.get("milestones"),
                   lr_gamma=schedule.get("gamma"), warmup_steps=schedule.get("warmup_steps"),
                   warmup_epochs=None)
    return {k: v for k, v in out.items() if k == "warmup_epochs" or v is not None}


def read_run_options(run_dir: str) -> dict[str, Any]:
    """The `run.json` of a run folder ({} when there is none or it is unreadable)."""
    path = os.path.join(run_dir, RUN_OPTIONS_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        logger.warning("Ignoring unreadable %s: %s", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def apply_resume(args: argparse.Namespace, checkpoint: str) -> dict[str, Any]:
    """Fill the options not given again from the run (`run.json`, then the checkpoint's
    training record, which wins for layers, learning rate, epochs and schedule).

    Returns:
        The checkpoint's metadata (`read_checkpoint_metadata`).

    Raises:
        UsageError: the checkpoint holds no stored config (not written by this project).
    """
    meta = read_checkpoint_metadata(checkpoint)
    if not meta["config"]:
        raise UsageError(f"--resume: {checkpoint} holds no stored config (a matterport or "
                         "Keras file?): start a run from it with --weights instead")
    stored = read_run_options(os.path.dirname(os.path.abspath(checkpoint)))
    options = dict(stored.get("options") or {})
    options.update(_options_of_training(meta["training"]))
    restored = {}
    for key in RESUMABLE:
        if getattr(args, key, None) is None and options.get(key) is not None:
            setattr(args, key, options[key])
            restored[key] = options[key]
    if getattr(args, "warmup_steps", None) is not None and restored.get("warmup_epochs"):
        args.warmup_epochs = None
    if not args.train and not args.dataset and stored.get("dataset"):
        for key, value in stored["dataset"].items():
            if key in DATASET_OPTIONS:
                setattr(args, key, value)
        restored["dataset"] = stored["dataset"].get("train") or stored["dataset"].get("dataset")
    if args.config == DEFAULT_CONFIG and stored.get("config"):
        args.config = stored["config"]
    logger.info("Resuming %s (epoch %s) with %s", checkpoint, meta["epoch"], restored)
    return meta


def resume_config(args: argparse.Namespace, meta: dict[str, Any]) -> tuple[type, dict]:
    """(config class, stored values) of a resumed run: the class of `--config` (or the run's),
    falling back to mrcnn.config:Config when it cannot be loaded any more; the values are the
    checkpoint's whole config (callables excepted), for `make_config`'s `derived`."""
    try:
        cls = load_config_class(args.config)
    except UsageError as err:
        logger.warning("%s; resuming with %s and the checkpoint's settings", err,
                       DEFAULT_CONFIG)
        cls = load_config_class(DEFAULT_CONFIG)
    values = {}
    for key, value in meta["config"].items():
        if key in _DERIVED or not hasattr(cls, key) or callable(getattr(cls, key)):
            continue
        values[key] = tuple(value) if isinstance(getattr(cls, key), tuple) and isinstance(
            value, list) else value
    return cls, values


# ---------------------------------------------------------------------------- run folder
def run_folder(args: argparse.Namespace) -> str | None:
    """The folder `--output-dir` or `--run-name` asks for (None: matterport's stamped one).

    Raises:
        UsageError: both are given, or the run name is not a plain folder name.
    """
    if args.output_dir and args.run_name:
        raise UsageError("give --output-dir DIR or --run-name NAME, not both")
    if args.output_dir:
        return os.path.abspath(args.output_dir)
    if args.run_name:
        try:
            return os.path.abspath(os.path.join(args.logs, runs.check_run_name(args.run_name)))
        except ValueError as err:
            raise UsageError(f"--run-name: {err}") from err
    return None


def check_new_run_folder(args: argparse.Namespace, weights_path: str | None) -> None:
    """Fail early (before a model is built) when `--run-name`/`--output-dir` names a folder
    holding another run and the weights do not come from it.

    Raises:
        UsageError: as `place_run`.
    """
    folder = run_folder(args)
    if folder is None or not os.path.isfile(os.path.join(folder, runs.RUN_CONFIG_FILE)):
        return
    if weights_path and os.path.dirname(os.path.abspath(weights_path)) == folder:
        return
    raise UsageError(f"{folder} already holds a run: continue it with --resume, or start a "
                     "new one with another --run-name / --output-dir")


def place_run(model: Any, args: argparse.Namespace) -> None:
    """Point `model` (after its weights are loaded) at the run folder of the options.

    A loaded checkpoint of the asked folder (or of any run, without a folder option)
    continues that run; otherwise a new run starts at epoch 0 in the asked folder. A new run
    never goes into a folder that already holds one.

    Raises:
        UsageError: the folder of a new run already holds a run's config.json.
    """
    folder = run_folder(args)
    if folder is not None and os.path.abspath(model.log_dir) != folder:
        info = runs.named_run_info(folder, model.config.NAME)
        model.log_dir, model.checkpoint_path, model.epoch = (
            info.log_dir, info.checkpoint_path, info.epoch)
    if model.epoch == 0 and os.path.isfile(os.path.join(model.log_dir, runs.RUN_CONFIG_FILE)):
        raise UsageError(f"{model.log_dir} already holds a run: continue it with --resume, or "
                         "start a new one with another --run-name / --output-dir")


def write_run_files(model: Any, config: Any, args: argparse.Namespace) -> None:
    """Write `config.json` (the resolved config) and `run.json` (the options) to the run
    folder, atomically."""
    os.makedirs(model.log_dir, exist_ok=True)
    write_json(os.path.join(model.log_dir, runs.RUN_CONFIG_FILE), config.to_dict())
    dataset = {k: getattr(args, k, None) for k in DATASET_OPTIONS}
    for key in _PATH_OPTIONS:
        if dataset[key]:
            dataset[key] = os.path.abspath(dataset[key])
    write_json(os.path.join(model.log_dir, RUN_OPTIONS_FILE), {
        "config": args.config, "settings": list(args.settings), "dataset": dataset,
        "options": {k: getattr(args, k, None) for k in RESUMABLE}})


def write_curves(log_dir: str) -> str | None:
    """Draw the run's `metrics.json` into `training_curves.png`; returns its path, or None
    when there is nothing to draw (a failure to draw is logged, never raised)."""
    from mrcnn.engine.callbacks import read_epoch_log
    from mrcnn.engine.callbacks.epoch_log import EPOCH_LOG_FILE
    from mrcnn.vis.curves import plot_training_curves

    try:
        records = read_epoch_log(os.path.join(log_dir, EPOCH_LOG_FILE))
        if not records:
            return None
        path = os.path.join(log_dir, CURVES_FILE)
        plot_training_curves(records, path, title=os.path.basename(log_dir))
        return path
    except (OSError, ValueError) as err:
        logger.warning("Could not draw the training curves: %s", err)
        return None
