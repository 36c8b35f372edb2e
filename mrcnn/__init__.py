"""mrcnn: Mask R-CNN for object detection and instance segmentation on TF 2.21 / Keras 3.

The numpy side (config, boxes, masks, anchors, image, dataset, targets, metrics) imports
no TensorFlow; `mrcnn.model` builds the networks.
"""

__version__ = "0.1.0"
