"""Evaluators (``EVALUATOR_REGISTRY``): ``Classification`` reports accuracy, error and macro F1, optionally the
accuracy of every class and the confusion matrix, in the printed format that result parsers read (CoOp's
``parse_test_res.py`` takes the ``* accuracy: X%`` line after ``=> result``). In a distributed run every rank
sees a disjoint shard; the predictions of all ranks are gathered before anything is computed."""
import logging
import os
from collections import OrderedDict

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score

from ..utils.distributed import all_gather_object, is_main_process
from ..utils.tools import unimplemented
from .build import EVALUATOR_REGISTRY

logger = logging.getLogger(__name__)


class EvaluatorBase:
    """What the trainer calls: ``reset()`` before an evaluation, ``process(model_output, ground_truth)`` for every
    batch, ``evaluate()`` at the end."""

    def __init__(self, cfg):
        self.cfg = cfg

    reset = unimplemented("reset", "forget what earlier batches gave")
    process = unimplemented("process", "take in one batch: the model's output and the ground truth")
    evaluate = unimplemented("evaluate", "the metrics of the batches taken in, as an ordered dict whose first "
                                         "value is what trainer.test() returns")


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    def __init__(self, cfg, lab2cname=None, **kwargs):
        super().__init__(cfg)
        if cfg.TEST.PER_CLASS_RESULT and lab2cname is None:
            raise ValueError("TEST.PER_CLASS_RESULT needs the class names (lab2cname)")
        self._lab2cname = lab2cname
        self.reset()

    def reset(self) -> None:
        self._labels, self._predictions = [], []

    def process(self, mo: torch.Tensor, gt: torch.Tensor) -> None:
        """``mo``: logits (N, C); ``gt``: labels (N,)."""
        self._predictions.extend(mo.argmax(dim=1).tolist())
        self._labels.extend(gt.tolist())

    def _all_ranks(self):
        """(labels, predictions) of every rank, as arrays."""
        shards = all_gather_object((self._labels, self._predictions))
        labels = np.array([y for shard, _ in shards for y in shard], dtype=np.int64)
        predictions = np.array([p for _, shard in shards for p in shard], dtype=np.int64)
        return labels, predictions

    def evaluate(self) -> OrderedDict:
        labels, predictions = self._all_ranks()
        hits = labels == predictions
        total, correct = len(labels), int(hits.sum())
        accuracy = 100.0 * correct / total
        macro_f1 = 100.0 * f1_score(labels, predictions, average="macro", labels=np.unique(labels))
        results = OrderedDict(accuracy=accuracy, error_rate=100.0 - accuracy, macro_f1=macro_f1)
        logger.info("\n".join([
            "=> result",
            f"* total: {total:,}",
            f"* correct: {correct:,}",
            f"* accuracy: {accuracy:.1f}%",
            f"* error: {100.0 - accuracy:.1f}%",
            f"* macro_f1: {macro_f1:.1f}%",
        ]))
        if self.cfg.TEST.PER_CLASS_RESULT:
            results["perclass_accuracy"] = self._report_per_class(labels, hits)
        if self.cfg.TEST.COMPUTE_CMAT and is_main_process():
            path = os.path.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            torch.save(torch.from_numpy(confusion_matrix(labels, predictions, normalize="true")), path)
            logger.info(f"Confusion matrix (rows: true class, normalized) saved to {path}")
        self.last_counts = {"total": total, "correct": correct}
        return results

    def _report_per_class(self, labels: np.ndarray, hits: np.ndarray) -> float:
        """Log each class's accuracy (classes present in the labels, in label order); return their mean."""
        lines, accuracies = ["=> per-class result"], []
        for label in np.unique(labels):
            mine = hits[labels == label]
            accuracies.append(100.0 * mine.sum() / len(mine))
            lines.append(f"* class: {label} ({self._lab2cname[int(label)]})\t"
                         f"total: {len(mine):,}\tcorrect: {int(mine.sum()):,}\tacc: {accuracies[-1]:.1f}%")
        mean = float(np.mean(accuracies))
        lines.append(f"* average: {mean:.1f}%")
        logger.info("\n".join(lines))
        return mean
