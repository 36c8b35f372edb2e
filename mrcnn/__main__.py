"""`python -m mrcnn`: the `mrcnn` command (see mrcnn.cli)."""

import sys

from mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
