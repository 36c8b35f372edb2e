"""Feature Pyramid Network top of Mask R-CNN, with matterport's layer names.

Builds P2..P6 from the backbone stages C2..C5: 1x1 lateral convolutions (`fpn_c{i}p{i}`), a
top-down path of 2x nearest-neighbour upsampling (`fpn_p{i}upsampled`) added to the laterals
(`fpn_p{i}add`), a 3x3 convolution on each merged map (`fpn_p2`..`fpn_p5`) and P6, a stride-2
subsampling of P5 (`fpn_p6`) used only by the RPN.
"""

from __future__ import annotations

import keras
from keras import layers as KL

from mrcnn.structures.checks import check_positive_int


def build_fpn(
    c2: keras.KerasTensor,
    c3: keras.KerasTensor,
    c4: keras.KerasTensor,
    c5: keras.KerasTensor,
    top_down_pyramid_size: int,
) -> list[keras.KerasTensor]:
    """Build the feature pyramid.

    Args:
        c2: `[batch, H/4, W/4, channels]`, backbone stage 2.
        c3: `[batch, H/8, W/8, channels]`, backbone stage 3.
        c4: `[batch, H/16, W/16, channels]`, backbone stage 4.
        c5: `[batch, H/32, W/32, channels]`, backbone stage 5.
        top_down_pyramid_size: Channel count of every pyramid level (matterport's
            `TOP_DOWN_PYRAMID_SIZE`, 256).

    Returns:
        `[P2, P3, P4, P5, P6]`, each `[batch, H/s, W/s, top_down_pyramid_size]` with strides
        s = 4, 8, 16, 32, 64. The heads use P2..P5, the RPN all five.

    Raises:
        ValueError: If `top_down_pyramid_size` is not a positive int.
    """
    depth = check_positive_int("top_down_pyramid_size", top_down_pyramid_size)

    p5 = KL.Conv2D(depth, (1, 1), name="fpn_c5p5")(c5)
    p4 = KL.Add(name="fpn_p4add")([
        KL.UpSampling2D(size=(2, 2), name="fpn_p5upsampled")(p5),
        KL.Conv2D(depth, (1, 1), name="fpn_c4p4")(c4),
    ])
    p3 = KL.Add(name="fpn_p3add")([
        KL.UpSampling2D(size=(2, 2), name="fpn_p4upsampled")(p4),
        KL.Conv2D(depth, (1, 1), name="fpn_c3p3")(c3),
    ])
    p2 = KL.Add(name="fpn_p2add")([
        KL.UpSampling2D(size=(2, 2), name="fpn_p3upsampled")(p3),
        KL.Conv2D(depth, (1, 1), name="fpn_c2p2")(c2),
    ])

    # A 3x3 convolution on each merged map reduces the aliasing of the upsampling.
    p2 = KL.Conv2D(depth, (3, 3), padding="same", name="fpn_p2")(p2)
    p3 = KL.Conv2D(depth, (3, 3), padding="same", name="fpn_p3")(p3)
    p4 = KL.Conv2D(depth, (3, 3), padding="same", name="fpn_p4")(p4)
    p5 = KL.Conv2D(depth, (3, 3), padding="same", name="fpn_p5")(p5)
    # P6 takes every other cell of P5 (a 1x1 max pool with stride 2), for the 512 px anchors.
    p6 = KL.MaxPooling2D(pool_size=(1, 1), strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]
