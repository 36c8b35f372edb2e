"""`mrcnn inspect-weights FILE`: list a weights file and, with --config, diff it against the
training model of that config (a dry run: nothing is loaded)."""

from __future__ import annotations

import argparse
import tempfile

from mrcnn.tools.common import UsageError, load_config_class, make_config, parse_settings
from mrcnn.tools.models import build_model


def run(args: argparse.Namespace) -> int:
    """Print the file listing, then the dry-run load report against --config; returns 0.

    Raises:
        UsageError: --set without --config, or a bad config.
        FileNotFoundError: nothing at FILE.
        ValueError: FILE is neither an HDF5 file nor a TF checkpoint.
    """
    # h5py and the checkpoint package (Keras) load only when the command runs, not for --help.
    from mrcnn.tools.inspect_weights import describe_weights, diff_against_model

    if args.settings and not args.config:
        raise UsageError("--set needs --config (the class the overrides apply to)")
    print(describe_weights(args.file, show_all=args.all))
    if args.config:
        config = make_config(load_config_class(args.config), parse_settings(args.settings))
        with tempfile.TemporaryDirectory() as logs:  # the model writes no run here
            keras_model = build_model("training", config, logs).keras_model
            report = diff_against_model(args.file, keras_model)
        print(f"\nDiff against the model of {args.config}:\n{report}")
    return 0
