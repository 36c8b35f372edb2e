"""Numpy data structures and their geometry: boxes, masks, anchors, images (no TensorFlow)."""
