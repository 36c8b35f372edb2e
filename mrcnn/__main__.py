"""`python -m mrcnn`: the `mrcnn` command (see mrcnn.tools.cli)."""

import sys

from mrcnn.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
