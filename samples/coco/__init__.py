"""MS COCO: train and evaluate Mask R-CNN on COCO-format data (matterport's sample)."""
