"""`mrcnn train`: load the datasets, build the config and model, load weights, train with the
callbacks of the flags, and leave config, metrics and curves in the run folder.

Resuming, the run folder and its files are `mrcnn.tools.training`.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from mrcnn.tools import training
from mrcnn.tools.common import (
    UsageError,
    check_same_classes,
    classes_from_dataset,
    config_name,
    load_config_class,
    load_dataset,
    make_augmentation,
    make_config,
    parse_settings,
)
from mrcnn.tools.models import (
    build_model,
    load_weights,
    read_checkpoint_metadata,
    resolve_checkpoint,
)

logger = logging.getLogger(__name__)


def _check_options(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    for key in ("eval_period", "eval_limit", "keep", "log_every", "tb_images", "warmup_steps",
                "warmup_epochs"):
        value = getattr(args, key)
        if value is not None and value < (0 if key.startswith("warmup") else 1):
            raise UsageError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
    if args.lr_schedule == "step" and not args.lr_steps:
        raise UsageError("--lr-schedule step needs --lr-steps EPOCH [EPOCH ...]")
    if args.lr_steps and args.lr_schedule != "step":
        raise UsageError("--lr-steps needs --lr-schedule step")
    if args.lr_gamma is not None and args.lr_gamma <= 0:
        raise UsageError(f"--lr-gamma must be > 0, got {args.lr_gamma}")


def _check_resume_options(args: argparse.Namespace) -> None:
    if args.weights != "none":
        raise UsageError("--resume loads the run's checkpoint: drop --weights")
    if args.exclude:
        raise UsageError("--resume loads every layer of the run's checkpoint: drop --exclude")


def _schedule(args: argparse.Namespace, config: Any, learning_rate: float) -> Any:
    """The WarmupLRSchedule of the flags, or None when none is asked for."""
    from mrcnn.engine.callbacks import WarmupLRSchedule

    warmup = args.warmup_steps or (args.warmup_epochs or 0) * config.STEPS_PER_EPOCH
    decay = args.lr_schedule or "constant"
    if decay == "constant" and not warmup:
        return None
    try:
        return WarmupLRSchedule(
            base_lr=learning_rate, warmup_steps=warmup, decay=decay,
            milestones=sorted(args.lr_steps or ()),
            gamma=0.1 if args.lr_gamma is None else args.lr_gamma,
            total=args.epochs if decay == "cosine" else None, unit="epoch",
            steps_per_epoch=config.STEPS_PER_EPOCH)
    except ValueError as err:
        raise UsageError(f"learning-rate schedule: {err}") from err


def _callbacks(args: argparse.Namespace, model: Any, config: Any, val_ds: Any,
               learning_rate: float) -> list:
    """The custom callbacks of the flags, in the order MaskRCNN.train runs them: mAP (a metric
    producer), schedule, TensorBoard, best, keep-N, detection images, the epoch log."""
    import keras

    from mrcnn.engine.callbacks import (
        BestCheckpoint,
        EpochLog,
        KeepLastCheckpoints,
        TensorBoardDetections,
    )

    out = []
    mean_ap = None
    if (args.eval_period or args.tb_images) and val_ds is None:
        raise UsageError("--eval-period and --tb-images need a validation set (--val or a VIA "
                         "val/ folder)")
    if args.eval_period:
        from mrcnn.engine.mean_ap import MeanAPCallback

        ids = list(val_ds.image_ids[:args.eval_limit] if args.eval_limit else val_ds.image_ids)
        mean_ap = MeanAPCallback(val_ds, config, image_ids=ids, every=args.eval_period)
        out.append(mean_ap)
    schedule = _schedule(args, config, learning_rate)
    if schedule is not None:
        out.append(schedule)
    if args.log_every:
        out.append(keras.callbacks.TensorBoard(log_dir=model.log_dir, histogram_freq=0,
                                               write_graph=False, update_freq=args.log_every))
    if args.best:
        if args.best == "mAP" and not args.eval_period:
            raise UsageError("--best mAP needs --eval-period N")
        if args.best.startswith("val_") and val_ds is None:
            raise UsageError(f"--best {args.best} needs a validation set")
        try:
            out.append(BestCheckpoint.for_model(model, monitor=args.best))
        except ValueError as err:
            raise UsageError(f"--best: {err}") from err
    if args.keep:
        out.append(KeepLastCheckpoints(model, keep=args.keep, name=config.NAME))
    if args.tb_images:
        images = [val_ds.load_image(i) for i in val_ds.image_ids[:args.tb_images]]
        detect_fn = mean_ap.detect if mean_ap is not None else _SharedDetector(model, config)
        out.append(TensorBoardDetections(model, images, detect_fn, val_ds.class_names,
                                         every=args.eval_period or 1))
    out.append(EpochLog(model))
    return out


class _SharedDetector:
    """detect() with the training weights, through an inference graph sharing the training
    model's layers (built at the first call)."""

    def __init__(self, model: Any, config: Any):
        self.model, self.config, self._graph = model, config, None

    def __call__(self, images: list) -> list[dict]:
        from mrcnn.engine.mean_ap import shared_inference_model
        from mrcnn.engine.predictor import detect_images

        if self._graph is None:
            self._graph = shared_inference_model(self.model.keras_model, self.config)
        return detect_images(self._graph, self.config, images)


def _warn_on_layer_switch(path: str | None, args: argparse.Namespace, layers: str) -> None:
    training_state = read_checkpoint_metadata(path)["training"] if path else None
    stored = (training_state or {}).get("layers")
    if stored and stored != layers and args.layers is None:
        logger.warning("The checkpoint's run trained layers %r; this run trains %r (the "
                       "default). To continue the run as it was use --resume, or pass "
                       "--layers.", stored, layers)


def run(args: argparse.Namespace) -> int:
    """Train up to `--epochs` (counted over the run, as matterport); returns 0.

    NUM_CLASSES comes from the training set unless --set. `--layers` defaults to "heads",
    or "all" when starting from random weights (`--weights none`). `--resume` continues a
    run with its layers, schedule, optimizer state, epoch, data and options.

    Raises:
        UsageError: bad options or datasets with different classes.
        FileNotFoundError: a dataset, image, run or weights file is missing.
        FloatingPointError: the training diverged (exit status 1).
    """
    meta = None
    overrides = parse_settings(args.settings)
    if args.resume:
        _check_resume_options(args)
        path = training.resume_checkpoint(
            args, config_name(load_config_class(args.config), overrides))
        meta = training.apply_resume(args, path)
    args.epochs = 1 if args.epochs is None else args.epochs
    args.augment = args.augment or "none"
    _check_options(args)
    train_ds, _ = load_dataset(args, "train")
    val_ds, _ = load_dataset(args, "val")
    check_same_classes(train_ds, val_ds)
    if val_ds is None:
        logger.info("No validation set: training without validation")
    if meta is not None:
        cls, derived = training.resume_config(args, meta)
        if meta["class_names"] and list(meta["class_names"]) != list(train_ds.class_names):
            raise UsageError(f"--resume: the run trained on classes {meta['class_names'][1:]}, "
                             f"the training set has {train_ds.class_names[1:]}")
    else:
        cls = load_config_class(args.config)
        derived = classes_from_dataset(train_ds, overrides)
        path = resolve_checkpoint(args.weights, args.logs, cls, overrides)
        training.check_new_run_folder(args, path)
    config = make_config(cls, overrides, derived)
    layers = args.layers or ("all" if path is None else "heads")
    if meta is None:
        _warn_on_layer_switch(path, args, layers)
    augmentation = make_augmentation(args.augment)
    model = build_model("training", config, args.logs)
    load_weights(model, "resume" if meta is not None else args.weights, path, args.exclude)
    if meta is not None and meta["epoch"] and model.epoch == 0:
        # A checkpoint outside its run folder: a new folder, but the run's epoch count.
        model.epoch = int(meta["epoch"])
    training.place_run(model, args)
    if model.epoch >= args.epochs:
        print(f"Nothing to train: the run is at epoch {model.epoch} and --epochs is "
              f"{args.epochs} (epochs count over the whole run)")
        return 0
    learning_rate = args.lr if args.lr is not None else config.LEARNING_RATE
    callbacks = _callbacks(args, model, config, val_ds, learning_rate)
    training.write_run_files(model, config, args)
    print(f"Training {layers} from epoch {model.epoch} to {args.epochs}, lr {learning_rate}, "
          f"{train_ds.num_images} training images, run directory {model.log_dir}")
    try:
        model.train(train_ds, val_ds, learning_rate=learning_rate, epochs=args.epochs,
                    layers=layers, augmentation=augmentation, custom_callbacks=callbacks,
                    workers=args.workers, verbose=2 if args.quiet else "auto")
    finally:
        curves = training.write_curves(model.log_dir)
    print(f"Done: checkpoints in {model.log_dir}"
          + (f"; curves in {curves}" if curves else ""))
    return 0
