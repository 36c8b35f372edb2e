"""Data: the Dataset base class, ground truth, training targets, augmentation, the Keras
data generator and annotation formats (COCO, VIA)."""
