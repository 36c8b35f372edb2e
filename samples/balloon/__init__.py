"""Balloons: train on a VIA-annotated folder and colour-splash detections (matterport's sample)."""
