"""Balloons: train Mask R-CNN on a VIA-annotated folder and apply the colour-splash effect.

matterport's samples/balloon/balloon.py command line:

    # Train a new model starting from pre-trained COCO weights
    python samples/balloon/balloon.py train --dataset=/path/to/balloon/dataset --weights=coco
    # Resume training a model that you had trained earlier
    python samples/balloon/balloon.py train --dataset=/path/to/balloon/dataset --weights=last
    # Train a new model starting from ImageNet weights
    python samples/balloon/balloon.py train --dataset=/path/to/balloon/dataset --weights=imagenet
    # Apply colour splash to an image
    python samples/balloon/balloon.py splash --weights=/path/to/weights.h5 --image=<file>
    # Apply colour splash to a video (any file OpenCV can read; written as MJPG .avi)
    python samples/balloon/balloon.py splash --weights=last --video=<file>

The dataset folder has `train/` and `val/`, each with images and `via_region_data.json`
(VIA 1.x or 2.x polygons). Nothing is downloaded here.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from typing import Any

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mrcnn.config import Config  # noqa: E402
from mrcnn.data.dataset import convert_channels  # noqa: E402
from mrcnn.data.formats.via import ViaDataset  # noqa: E402
from mrcnn.engine.runs import exclude_for, resolve_weights  # noqa: E402
from mrcnn.fileio import atomic_write  # noqa: E402

logger = logging.getLogger("balloon")

DEFAULT_LOGS_DIR = os.path.join(ROOT, "logs")


class BalloonConfig(Config):
    """Configuration for training on the balloon dataset (matterport's values)."""

    NAME = "balloon"
    IMAGES_PER_GPU = 2  # a 12 GB GPU holds two 1024 px images
    NUM_CLASSES = 1 + 1  # background + balloon
    STEPS_PER_EPOCH = 100
    DETECTION_MIN_CONFIDENCE = 0.9  # skip detections below 90% confidence


class InferenceConfig(BalloonConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1


class BalloonDataset(ViaDataset):
    """The balloon dataset: one class, VIA polygons."""

    def load_balloon(self, dataset_dir: str, subset: str) -> None:
        """Load the "train" or "val" subset of the balloon dataset."""
        if subset not in ("train", "val"):
            raise ValueError(f"subset must be 'train' or 'val', got {subset!r}")
        self.load_via(dataset_dir, subset, class_name="balloon", source="balloon")


def color_splash(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the colour of the detected instances and turn the rest of the image gray (the
    luminance of `mrcnn.data.dataset.convert_channels`).

    Args:
        image: [height, width, 3] RGB image.
        mask: [height, width, instances] instance masks (any number, also 0).

    Returns:
        [height, width, 3] uint8 image.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [height, width, 3] RGB, got shape {image.shape}")
    mask = np.asarray(mask)
    if mask.ndim != 3 or mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"mask must be [{image.shape[0]}, {image.shape[1]}, instances], got "
                         f"shape {mask.shape}")
    splash = np.repeat(convert_channels(image, 1), 3, axis=2)
    covered = mask.any(axis=2)
    splash[covered] = image[covered]
    return splash


def _write_image_atomic(path: str, image: np.ndarray) -> None:
    """Encode an RGB image by the extension of `path` and move it into place in one step."""
    import cv2

    ok, encoded = cv2.imencode(os.path.splitext(path)[1], image[..., ::-1])
    if not ok:
        raise ValueError(f"OpenCV cannot encode an image as {path!r}")
    with atomic_write(path, suffix=".partial") as tmp, open(tmp, "wb") as f:
        f.write(encoded.tobytes())


def _read_rgb(path: str) -> np.ndarray:
    import skimage.io

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path!r}")
    image = np.asarray(skimage.io.imread(path))
    if image.ndim == 2:
        image = np.repeat(image[..., np.newaxis], 3, axis=2)
    return image[..., :3]


def _splash_video(model: Any, video_path: str, out_path: str) -> int:
    """Splash every frame of a video into an MJPG .avi at `out_path`; returns the frame count."""
    import cv2

    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot read the video {video_path!r}")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    tmp = os.path.join(os.path.dirname(os.path.abspath(out_path)),
                       f".{os.path.basename(out_path)}.partial.avi")
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    count = 0
    try:
        if not writer.isOpened():
            raise ValueError(f"OpenCV cannot write an MJPG video at {tmp!r}")
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = frame[..., ::-1].copy()
            result = model.detect([rgb], verbose=0)[0]
            writer.write(np.ascontiguousarray(color_splash(rgb, result["masks"])[..., ::-1]))
            count += 1
            logger.info("frame %d", count)
    except BaseException:
        writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        capture.release()
    writer.release()
    if count == 0:
        os.unlink(tmp)
        raise ValueError(f"no frame could be read from {video_path!r}")
    os.replace(tmp, out_path)
    return count


def detect_and_color_splash(model: Any, image_path: str | None = None,
                            video_path: str | None = None, out_dir: str = ".") -> str:
    """Detect balloons and write the colour-splash image (PNG) or video (MJPG .avi).

    Args:
        model: an inference model (anything with `detect(images)`).
        image_path: an image file; or
        video_path: a video file OpenCV can read.
        out_dir: folder of the output, named splash_{YYYYmmddTHHMMSS}.png / .avi; the file
            appears complete or not at all (written beside it, then renamed).

    Returns:
        The path of the written file.

    Raises:
        ValueError: not exactly one of image_path/video_path, or an unreadable video.
        FileNotFoundError: the input file does not exist.
    """
    if (image_path is None) == (video_path is None):
        raise ValueError("give exactly one of image_path and video_path")
    os.makedirs(out_dir, exist_ok=True)
    stamp = f"{datetime.datetime.now():%Y%m%dT%H%M%S}"
    if image_path is not None:
        logger.info("Running on %s", image_path)
        image = _read_rgb(image_path)
        result = model.detect([image], verbose=1)[0]
        out_path = os.path.join(out_dir, f"splash_{stamp}.png")
        _write_image_atomic(out_path, color_splash(image, result["masks"]))
    else:
        if not os.path.isfile(video_path):
            raise FileNotFoundError(f"video not found: {video_path!r}")
        out_path = os.path.join(out_dir, f"splash_{stamp}.avi")
        _splash_video(model, video_path, out_path)
    logger.info("Saved to %s", out_path)
    return out_path


def train(model: Any, config: Config, dataset_dir: str) -> None:
    """Train the network heads for 30 epochs (matterport's schedule for this small set)."""
    dataset_train = BalloonDataset()
    dataset_train.load_balloon(dataset_dir, "train")
    dataset_train.prepare()
    dataset_val = BalloonDataset()
    dataset_val.load_balloon(dataset_dir, "val")
    dataset_val.prepare()
    logger.info("Training network heads")
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE, epochs=30,
                layers="heads")


def load_model(mode: str, config: Config, logs: str, weights: str) -> Any:
    """Build a MaskRCNN and load `weights` ("coco", "last", "imagenet" or a path)."""
    from mrcnn import model as modellib  # deferred: TensorFlow is slow to import

    path = resolve_weights(weights, logs, config.NAME)
    model = modellib.MaskRCNN(mode=mode, config=config, model_dir=logs)
    if path:
        logger.info("Loading weights %s", path)
        # COCO's heads depend on its 81 classes: exclude_for leaves them out.
        model.load_weights(path, by_name=True,
                           exclude=exclude_for(weights, None, config.NUM_CLASSES))
    return model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train Mask R-CNN to detect balloons.")
    parser.add_argument("command", metavar="<command>", choices=("train", "splash"),
                        help="'train' or 'splash'")
    parser.add_argument("--dataset", metavar="/path/to/balloon/dataset/",
                        help="Directory of the Balloon dataset")
    parser.add_argument("--weights", required=True, metavar="/path/to/weights.h5",
                        help="Path to weights .h5 file or 'coco', 'last' or 'imagenet'")
    parser.add_argument("--logs", default=DEFAULT_LOGS_DIR, metavar="/path/to/logs/",
                        help="Logs and checkpoints directory (default=logs/)")
    parser.add_argument("--image", metavar="path or URL to image",
                        help="Image to apply the color splash effect on")
    parser.add_argument("--video", metavar="path or URL to video",
                        help="Video to apply the color splash effect on")
    parser.add_argument("--out-dir", default=".", help="Folder of the splash output")
    args = parser.parse_args(argv)
    if args.command == "train" and not args.dataset:
        parser.error("Argument --dataset is required for training")
    if args.command == "splash" and not (args.image or args.video):
        parser.error("Provide --image or --video to apply color splash")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    print(f"Weights: {args.weights}\nDataset: {args.dataset}\nLogs: {args.logs}")
    if args.command == "train":
        for subset in ("train", "val"):
            if not os.path.isfile(os.path.join(args.dataset, subset, "via_region_data.json")):
                print(f"error: {os.path.join(args.dataset, subset, 'via_region_data.json')!r} "
                      "not found; the dataset folder needs train/ and val/ with images and "
                      "via_region_data.json (nothing is downloaded here)", file=sys.stderr)
                return 2
    else:
        for path in (args.image, args.video):
            if path and not os.path.isfile(path):
                print(f"error: file not found: {path!r}", file=sys.stderr)
                return 2
    config = BalloonConfig() if args.command == "train" else InferenceConfig()
    config.display()
    try:
        model = load_model("training" if args.command == "train" else "inference", config,
                           args.logs, args.weights)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: cannot load weights {args.weights!r}: {err}", file=sys.stderr)
        return 2
    if args.command == "train":
        train(model, config, args.dataset)
    else:
        print(detect_and_color_splash(model, image_path=args.image, video_path=args.video,
                                      out_dir=args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
