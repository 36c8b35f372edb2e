"""The `mrcnn` command line and its tools (dataset debugger, weights inspector)."""
