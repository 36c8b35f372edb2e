"""matterport's `mrcnn.visualize`: drawing detections, ground truth and diagnostics.

    from mrcnn import visualize
    visualize.display_instances(image, r["rois"], r["masks"], r["class_ids"], class_names,
                                r["scores"])

The functions live in `mrcnn.vis` (drawing, statistics plots, figure plumbing); this module
keeps matterport's names where its users import them. Importing it leaves the matplotlib
backend alone: figures show inline in a notebook, and a `path=` argument writes a PNG
(atomically) without needing a screen.
"""

from mrcnn.vis.drawing import (
    apply_mask,
    detections_grid,
    display_differences,
    display_images,
    display_instances,
    display_top_masks,
    draw_box,
    draw_boxes,
    draw_rois,
    random_colors,
)
from mrcnn.vis.stats import (
    display_table,
    display_weight_stats,
    plot_overlaps,
    plot_precision_recall,
)

__all__ = [
    "apply_mask",
    "detections_grid",
    "display_differences",
    "display_images",
    "display_instances",
    "display_table",
    "display_top_masks",
    "display_weight_stats",
    "draw_box",
    "draw_boxes",
    "draw_rois",
    "plot_overlaps",
    "plot_precision_recall",
    "random_colors",
]
