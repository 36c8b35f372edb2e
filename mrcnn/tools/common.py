"""What every `mrcnn` subcommand shares: the user-error type, the one config loader (classes
and JSON/YAML config files), `--set` parsing, dataset loading, augmentation presets and result
files.

Nothing here builds a network (see `mrcnn.tools.models`) or imports TensorFlow. Errors in the
user's input are `UsageError` (a ValueError), reported by `mrcnn.tools.cli.main` in one line
with exit status 2.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
from typing import Any

import numpy as np

from mrcnn.fileio import atomic_write

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "mrcnn.config:Config"
DEFAULT_NAME = "mrcnn"  # NAME of a config class that has none (it names runs and checkpoints)
AUGMENTATIONS = ("none", "flip", "flips", "affine")
_SETTING = re.compile(r"^[A-Z][A-Z0-9_]*$")


class UsageError(ValueError):
    """A user error: bad options, missing files, bad data. The command exits with status 2."""


_PYTHON_ADVICE = (
    # (library advice, what to type on the command line instead)
    (re.compile(r"pass skip_invalid=True"), lambda m: "add --skip-invalid"),
    (re.compile(r"Pass exclude=(\[[^\]]*\]) to leave these layers alone, skip_mismatch=True "
                r"to skip them, or reshape=True when only the shape \(not the size\) "
                r"differs\."),
     lambda m: f"Add --exclude {_names(m.group(1))} to leave these layers alone."),
    (re.compile(r"exclude=(\[[^\]]*\])"), lambda m: f"--exclude {_names(m.group(1))}"),
)


def _names(python_list: str) -> str:
    """"['a', 'b']" -> "a,b" (the --exclude syntax)."""
    try:
        return ",".join(str(n) for n in ast.literal_eval(python_list))
    except (ValueError, SyntaxError):
        return python_list


def for_command_line(err: Exception) -> Exception:
    """`err` with library advice (`skip_invalid=True`, `exclude=[...]`) rewritten as the
    command-line flags that do the same (`--skip-invalid`, `--exclude a,b`).

    Returns:
        A FileNotFoundError for a FileNotFoundError, else a UsageError, chained to `err` by the
        caller (`raise for_command_line(err) from err`).
    """
    message = str(err)
    for pattern, replace in _PYTHON_ADVICE:
        message = pattern.sub(replace, message)
    return FileNotFoundError(message) if isinstance(err, FileNotFoundError) else \
        UsageError(message)


# ---------------------------------------------------------------------------- configs
def _import_module(spec: str, module_name: str) -> Any:
    if module_name.endswith(".py"):
        if not os.path.isfile(module_name):
            raise UsageError(f"--config {spec!r}: file {module_name!r} not found")
        name = "mrcnn_user_config_" + re.sub(r"\W", "_", os.path.abspath(module_name))
        module_spec = importlib.util.spec_from_file_location(name, module_name)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    return importlib.import_module(module_name)


CONFIG_FILE_TYPES = (".json", ".yaml", ".yml")
BASE_KEY = "_BASE_"  # a config file's optional base class, "module:Class" (detectron2's name)
_DERIVED = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")  # computed by Config.__init__


def _read_config_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"--config: file {path!r} not found")
    with open(path) as handle:
        text = handle.read()
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"--config {path!r}: not valid JSON: {err}") from err
    else:
        try:
            import yaml
        except ImportError as err:
            raise UsageError(f"--config {path!r}: YAML config files need PyYAML (pip install "
                             "pyyaml); or write the settings as JSON") from err
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise UsageError(f"--config {path!r}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise UsageError(f"--config {path!r}: expected a mapping of setting names to values, "
                         f"got {type(data).__name__}")
    return data


def _setting_value(default: Any, value: Any) -> Any:
    """A JSON/YAML value in the type of the class default (lists to tuples or arrays)."""
    if isinstance(value, list):
        if isinstance(default, np.ndarray):
            return np.array(value, dtype=default.dtype)
        if isinstance(default, tuple):
            return tuple(value)
    return value


def load_config_file(path: str) -> type:
    """A Config subclass made from a JSON or YAML file of `{SETTING: value}`.

    Keys are Config attribute names (upper case); the optional key `_BASE_` names the class
    to start from ("module.path:ClassName" or "file.py:ClassName", default
    mrcnn.config:Config). The values computed by Config (BATCH_SIZE, IMAGE_SHAPE,
    IMAGE_META_SIZE) are ignored, so a run's `config.json` is a config file too. YAML needs
    PyYAML.

    Raises:
        UsageError: no such file, unreadable JSON/YAML, PyYAML missing for YAML, a key that is
            not a setting of the base class, or a bad `_BASE_`.
    """
    data = _read_config_file(path)
    base_spec = data.pop(BASE_KEY, DEFAULT_CONFIG)
    if not isinstance(base_spec, str) or os.path.splitext(base_spec)[1] in CONFIG_FILE_TYPES:
        raise UsageError(f"--config {path!r}: {BASE_KEY} must be 'module.path:ClassName', "
                         f"got {base_spec!r}")
    base = load_config_class(base_spec)
    unknown = sorted(k for k in data if k not in _DERIVED and (
        not isinstance(k, str) or not _SETTING.match(k) or not hasattr(base, k)))
    if unknown:
        raise UsageError(f"--config {path!r}: not settings of {base.__name__}: "
                         f"{', '.join(map(str, unknown))}")
    attrs = {k: _setting_value(getattr(base, k), v) for k, v in data.items()
             if k not in _DERIVED}
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    cls = type(f"FileConfig_{stem}", (base,), attrs)
    cls.__module__ = __name__
    logger.info("Config %s: %s with %d settings from the file", path, base.__name__, len(attrs))
    return cls


def load_config_class(spec: str) -> type:
    """The Config class named by `"module.path:ClassName"`, `"file.py:ClassName"`, or a config
    file `"settings.json"` / `"settings.yaml"` (`load_config_file`).

    A module path is looked up from the working directory too (as `python -m` does). This is
    the one config loader of the command line (every subcommand's `--config`).

    Raises:
        UsageError: `spec` is malformed, names nothing importable, or not a Config subclass.
    """
    from mrcnn.config import Config

    if os.path.splitext(spec)[1].lower() in CONFIG_FILE_TYPES:
        return load_config_file(spec)
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name.isidentifier():
        raise UsageError(f"--config must look like 'module.path:ClassName' or "
                         f"'path/to/file.py:ClassName', got {spec!r}")
    try:
        module = _import_module(spec, module_name)
    except ImportError as err:
        raise UsageError(f"--config {spec!r}: cannot import {module_name!r}: {err}") from err
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Config)):
        raise UsageError(f"--config {spec!r}: {module_name} has no Config subclass "
                         f"{class_name!r}")
    return cls


def parse_value(text: str) -> Any:
    """A --set value: a Python literal (`0.5`, `(8, 16)`, `True`, `None`, `'x'`) or, if the
    text is not one, the text itself as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """`["NAME=VALUE", ...]` to {NAME: value}; later items win.

    Raises:
        UsageError: an item without `=` or whose name is not an upper-case setting name.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _SETTING.match(name):
            raise UsageError(f"--set expects NAME=VALUE with an upper-case config setting "
                             f"name (e.g. IMAGE_MAX_DIM=512), got {item!r}")
        out[name] = parse_value(value.strip())
    return out


def config_name(cls: type, overrides: dict[str, Any]) -> str:
    """The NAME runs of this config are filed under: --set NAME, the class's, or DEFAULT_NAME."""
    return overrides.get("NAME") or getattr(cls, "NAME", None) or DEFAULT_NAME


def make_config(cls: type, overrides: dict[str, Any], derived: dict[str, Any] | None = None,
                ) -> Any:
    """`cls.from_dict` with `derived` values (dataset class count, checkpoint settings)
    under the user's `overrides`; a config without NAME gets DEFAULT_NAME.

    Raises:
        UsageError: unknown setting names or values that do not validate.
    """
    values = dict(derived or {})
    values.update(overrides)
    if not values.get("NAME") and not getattr(cls, "NAME", None):
        values["NAME"] = DEFAULT_NAME
        logger.info("Config NAME is not set: using %r (--set NAME=... to change)", DEFAULT_NAME)
    try:
        return cls.from_dict(values)
    except (ValueError, TypeError) as err:
        raise UsageError(f"config {cls.__name__}: {err}") from err


# ---------------------------------------------------------------------------- datasets
def dataset_format(args: argparse.Namespace) -> str | None:
    """"coco", "via", or None when no dataset option is given."""
    if args.dataset_format:
        return args.dataset_format
    if args.dataset:
        return "via"
    return "coco" if (args.train or args.val) else None


def _load_coco(annotation_json: str, image_dir: str | None, what: str,
               skip_invalid: bool) -> tuple[Any, Any]:
    from mrcnn.data.formats.coco import CocoDataset

    if not image_dir:
        raise UsageError(f"--{what} needs --{what}-images (the folder of its images)")
    dataset = CocoDataset()
    try:
        coco = dataset.load_coco(annotation_json, image_dir, return_coco=True,
                                 skip_invalid=skip_invalid)
    except (ValueError, FileNotFoundError) as err:
        raise for_command_line(err) from err
    dataset.prepare()
    return dataset, coco


def _load_via(args: argparse.Namespace, subset: str) -> Any:
    from mrcnn.data.formats.via import ViaDataset

    dataset = ViaDataset()
    try:
        dataset.load_via(args.dataset, subset, class_name=args.class_name,
                         class_attribute=args.class_attribute, skip_invalid=args.skip_invalid)
    except (ValueError, FileNotFoundError) as err:
        raise for_command_line(err) from err
    dataset.prepare()
    return dataset


def load_dataset(args: argparse.Namespace, subset: str) -> tuple[Any, Any]:
    """(prepared dataset, pycocotools COCO object or None) of `subset` ("train" or "val").

    Returns (None, None) when that subset is not given (no --val, no VIA val/ folder).

    Raises:
        UsageError: no dataset option, or an incomplete one.
        FileNotFoundError, ValueError: from the COCO and VIA loaders (missing or bad files).
    """
    fmt = dataset_format(args)
    if fmt == "via":
        if not args.dataset:
            raise UsageError("--dataset-format via needs --dataset VIA_DIR")
        if subset == "val" and not os.path.isdir(os.path.join(args.dataset, "val")):
            return None, None
        return _load_via(args, subset), None
    if fmt == "coco":
        annotation = args.train if subset == "train" else args.val
        if not annotation:
            if subset == "train":
                raise UsageError("COCO data needs --train ANN.json --train-images DIR")
            return None, None
        return _load_coco(annotation, getattr(args, f"{subset}_images"), subset,
                          args.skip_invalid)
    raise UsageError("no dataset: give --train ANN.json --train-images DIR (COCO format) or "
                     "--dataset VIA_DIR (VIA folders train/ and val/)")


def check_same_classes(train: Any, val: Any) -> None:
    """Raise UsageError when two datasets number their classes differently."""
    if val is not None and list(train.class_names) != list(val.class_names):
        raise UsageError(f"the training and validation sets have different classes "
                         f"({train.class_names[1:]} vs {val.class_names[1:]}): class ids would "
                         "not match")


def classes_from_dataset(dataset: Any, overrides: dict) -> dict:
    """{"NUM_CLASSES": n} from the dataset unless --set NUM_CLASSES was given (logged).

    Raises:
        UsageError: --set NUM_CLASSES is smaller than the dataset's class count.
    """
    n = int(dataset.num_classes)
    if "NUM_CLASSES" in overrides:
        if int(overrides["NUM_CLASSES"]) < n:
            raise UsageError(f"--set NUM_CLASSES={overrides['NUM_CLASSES']} but the dataset has "
                             f"{n} classes with the background ({dataset.class_names[1:]})")
        return {}
    logger.info("NUM_CLASSES = %d from the dataset (background + %s); --set NUM_CLASSES=N "
                "to override", n, ", ".join(dataset.class_names[1:]))
    return {"NUM_CLASSES": n}


def split_names(text: str) -> list[str]:
    """`"a, b,c"` to ["a", "b", "c"] (--class-names).

    Raises:
        UsageError: no name in `text`.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--class-names must list at least one name, got {text!r}")
    return names


def read_image(path: str, channels: int) -> np.ndarray:
    """An image file as [height, width, channels] uint8.

    Raises:
        FileNotFoundError: no file at `path`.
        UsageError: the file is not a readable image.
    """
    import skimage.io

    from mrcnn.data.dataset import convert_channels, to_uint8

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {path!r} not found")
    try:
        image = skimage.io.imread(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read image {path!r}: {err}") from err
    return convert_channels(to_uint8(image), channels)


# ---------------------------------------------------------------------------- augmentation
def make_augmentation(name: str) -> Any:
    """The augmenter of an --augment choice (None for "none"): imgaug's when imgaug is
    installed, else albumentations' (the same flips and affine).

    Raises:
        UsageError: `name` is not one of AUGMENTATIONS, or neither library is installed.
    """
    if name not in AUGMENTATIONS:
        raise UsageError(f"--augment must be one of {', '.join(AUGMENTATIONS)}, got {name!r}")
    if name == "none":
        return None
    from mrcnn.data.augment import import_imgaug

    try:
        iaa = import_imgaug().augmenters
    except ImportError:
        return _albumentations_augmentation(name)
    if name == "flip":
        return iaa.Fliplr(0.5)
    if name == "flips":
        return iaa.Sequential([iaa.Fliplr(0.5), iaa.Flipud(0.5)])
    return iaa.Sequential([iaa.Fliplr(0.5),
                           iaa.Sometimes(0.5, iaa.Affine(rotate=(-15, 15), scale=(0.9, 1.1)))])


def _albumentations_augmentation(name: str) -> Any:
    try:
        import albumentations as A
    except ImportError:
        raise UsageError(f"--augment {name} needs albumentations (pip install "
                         "\"mrcnn[augment]\") or imgaug; or pass --augment none") from None
    if name == "flip":
        return A.HorizontalFlip(p=0.5)
    if name == "flips":
        return A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    return A.Compose([A.HorizontalFlip(p=0.5),
                      A.Affine(rotate=(-15, 15), scale=(0.9, 1.1), p=0.5)])


def augmentation_available() -> bool:
    """Whether imgaug or albumentations can be imported (for defaults that augment)."""
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("imgaug", "albumentations"))


# ---------------------------------------------------------------------------- results
def write_json(path: str, data: Any) -> None:
    """Write `data` as indented JSON to `path` atomically (values JSON cannot hold become
    strings).

    Raises:
        FileNotFoundError: the folder of `path` does not exist.
    """
    with atomic_write(path, suffix=".json") as tmp, open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
