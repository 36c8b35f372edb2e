"""Where the project's shared fixtures live: `shared/fixtures` beside the checkout (CI's
layout), else the workplace's /work/shared/fixtures."""

import os

_CANDIDATES = [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "fixtures"),
    "/work/shared/fixtures",
]
FIXTURES = next((os.path.normpath(p) for p in _CANDIDATES if os.path.isdir(p)), None)
if FIXTURES is None:
    raise FileNotFoundError(f"shared fixtures not found; looked in {_CANDIDATES}")
