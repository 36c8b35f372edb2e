"""The `mrcnn` subcommands, one module each (`train`, `evaluate`, `detect`,
`inspect_weights`, `debug_data`, `export`).

Each module has `run(args) -> int`: it takes the parsed arguments (`mrcnn.tools.parser`),
prints its results to stdout and returns the exit status; a user error is raised as
`mrcnn.tools.common.UsageError` (or FileNotFoundError/ValueError from the loaders) for
`mrcnn.tools.cli.main` to report in one line. Imports point one way: cli -> commands ->
models -> common.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mrcnn.tools.commands import debug_data, detect, evaluate, export, inspect_weights, train

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train.run,
    "evaluate": evaluate.run,
    "detect": detect.run,
    "inspect-weights": inspect_weights.run,
    "debug-data": debug_data.run,
    "export": export.run,
}
