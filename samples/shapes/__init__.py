"""Synthetic shapes: squares, circles and triangles on plain backgrounds (matterport's toy)."""
