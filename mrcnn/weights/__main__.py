"""Command line: `python -m mrcnn.weights inspect FILE [--config module.path:ClassName] [--all]`."""

from __future__ import annotations

import argparse
import logging
import sys

from mrcnn.weights.inspect import inspect_weights


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(prog="python -m mrcnn.weights",
                                     description="Weights file tools for mrcnn.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("inspect", help="list a weights file's layers, weights, shapes, dtypes")
    cmd.add_argument("file", help="Keras-2 .h5 weights file or TF checkpoint (prefix or folder)")
    cmd.add_argument("--config", default=None,
                     help="module.path:ClassName of a Config; prints the diff against its model")
    cmd.add_argument("--all", action="store_true", help="also list layers without weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        text = inspect_weights(args.file, args.config, show_all=args.all)
    except (FileNotFoundError, ValueError, KeyError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
