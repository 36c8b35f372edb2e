"""Evaluation: matterport's AP metrics, one-pass dataset evaluation, COCOeval.

    from mrcnn.evaluation import evaluate_dataset
    result = evaluate_dataset(model, dataset_val)   # per-class AP, mAP@0.5, mAP@[.5:.95]
"""

from mrcnn.evaluation.evaluator import EvaluationResult, evaluate_dataset

__all__ = ["EvaluationResult", "evaluate_dataset"]
