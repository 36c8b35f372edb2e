"""The shared tiny Mask R-CNN config of the end-to-end tests: shapes data at 128 px with
slim heads, small enough to build in about a second and train a step in seconds."""

from mrcnn.config import Config


class TinyConfig(Config):
    NAME = "tiny"
    BACKBONE = "resnet50"
    NUM_CLASSES = 4
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TRAIN_ROIS_PER_IMAGE = 16
    POST_NMS_ROIS_TRAINING = 64
    POST_NMS_ROIS_INFERENCE = 32
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MAX_GT_INSTANCES = 5
    DETECTION_MAX_INSTANCES = 5
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    MINI_MASK_SHAPE = (14, 14)
    STEPS_PER_EPOCH = 3
    VALIDATION_STEPS = 1
    LEARNING_RATE = 0.01
    RANDOM_SEED = 0
