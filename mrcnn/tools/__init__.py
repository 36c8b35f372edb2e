"""The `mrcnn` command line and its tools.

    cli.py             entry point: `mrcnn` console script and `python -m mrcnn`
    parser.py          the argparse parser (every subcommand's options)
    commands/          one module per subcommand: train, evaluate, detect, inspect_weights,
                       debug_data
    models.py          building the network a subcommand needs, weights resolution
    common.py          the user-error type, the one config loader, --set, datasets, JSON files
    debug_data.py      the dataset debugger (pictures, anchor-match check)
    inspect_weights.py describing weights files and diffing them against a model

Imports point one way: cli -> parser, commands -> models -> common. Nothing is imported from
the library until a command runs.
"""
