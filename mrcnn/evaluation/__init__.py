"""Evaluation: matterport's AP metrics, one-pass dataset evaluation, COCOeval.

    from mrcnn.evaluation import evaluate_dataset
    result = evaluate_dataset(model, dataset_val)   # per-class AP, mAP@0.5, mAP@[.5:.95]
    report = evaluate_model(model, dataset_val, coco)  # one pass: COCOeval + the above
"""

from mrcnn.evaluation.evaluator import EvaluationResult, evaluate_dataset
from mrcnn.evaluation.runner import EvaluationReport, evaluate_model

__all__ = ["EvaluationReport", "EvaluationResult", "evaluate_dataset", "evaluate_model"]
