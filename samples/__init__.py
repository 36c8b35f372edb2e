"""Sample projects built on mrcnn (shapes: the synthetic dataset used by the main job)."""
