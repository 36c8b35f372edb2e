"""Pictures with matplotlib: detections and ground truth, statistics plots, figure plumbing.
`mrcnn.visualize` re-exports matterport's names from here."""
