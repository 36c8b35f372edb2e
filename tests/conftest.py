"""Test session set-up: quiet TensorFlow's C++ logging before anything imports it."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The samples package (samples/shapes/shapes.py) lives at the repository root.
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
