"""The ``Classification`` evaluator: accuracy, error, macro F1, optional per-class accuracy and confusion
matrix, printed in Dassl's exact text format (result parsers read these lines)."""
import logging
import os
from collections import OrderedDict, defaultdict

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score

from ..utils.distributed import all_gather_object, is_main_process
from .build import EVALUATOR_REGISTRY

logger = logging.getLogger(__name__)


class EvaluatorBase:
    def __init__(self, cfg):
        self.cfg = cfg

    def reset(self):
        raise NotImplementedError

    def process(self, mo, gt):
        raise NotImplementedError

    def evaluate(self):
        raise NotImplementedError


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Evaluator for classification; in a distributed run the predictions of every rank are gathered."""

    def __init__(self, cfg, lab2cname=None, **kwargs):
        super().__init__(cfg)
        self._lab2cname = lab2cname
        self._per_class_res = None
        self.reset()

    def reset(self) -> None:
        self._correct = 0
        self._total = 0
        self._y_true = []
        self._y_pred = []
        if self.cfg.TEST.PER_CLASS_RESULT:
            if self._lab2cname is None:
                raise ValueError("lab2cname must be given to compute per-class results")
            self._per_class_res = defaultdict(list)

    def process(self, mo: torch.Tensor, gt: torch.Tensor) -> None:
        """``mo``: logits (N, C); ``gt``: labels (N,)."""
        pred = mo.max(1)[1]
        matches = pred.eq(gt).int()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.data.cpu().numpy().tolist())
        self._y_pred.extend(pred.data.cpu().numpy().tolist())

    def _gather(self) -> None:
        gathered = all_gather_object((self._y_true, self._y_pred))
        if len(gathered) > 1:
            self._y_true = [y for yt, _ in gathered for y in yt]
            self._y_pred = [y for _, yp in gathered for y in yp]
            self._total = len(self._y_true)
            self._correct = int(sum(t == p for t, p in zip(self._y_true, self._y_pred)))

    def evaluate(self) -> OrderedDict:
        self._gather()
        results = OrderedDict()
        acc = 100.0 * self._correct / self._total
        err = 100.0 - acc
        macro_f1 = 100.0 * f1_score(self._y_true, self._y_pred, average="macro", labels=np.unique(self._y_true))
        results["accuracy"] = acc
        results["error_rate"] = err
        results["macro_f1"] = macro_f1
        logger.info(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {err:.1f}%\n"
            f"* macro_f1: {macro_f1:.1f}%"
        )
        if self._per_class_res is not None:
            for label, pred in zip(self._y_true, self._y_pred):
                self._per_class_res[label].append(int(label == pred))
            accs = []
            lines = ["=> per-class result"]
            for label in sorted(self._per_class_res.keys()):
                res = self._per_class_res[label]
                correct, total = sum(res), len(res)
                class_acc = 100.0 * correct / total
                accs.append(class_acc)
                lines.append(f"* class: {label} ({self._lab2cname[label]})\t"
                             f"total: {total:,}\tcorrect: {correct:,}\tacc: {class_acc:.1f}%")
            mean_acc = float(np.mean(accs))
            lines.append(f"* average: {mean_acc:.1f}%")
            logger.info("\n".join(lines))
            results["perclass_accuracy"] = mean_acc
        if self.cfg.TEST.COMPUTE_CMAT and is_main_process():
            cmat = confusion_matrix(self._y_true, self._y_pred, normalize="true")
            save_path = os.path.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            torch.save(torch.from_numpy(cmat), save_path)
            logger.info(f"Confusion matrix is saved to {save_path}")
        self.last_counts = {"total": self._total, "correct": self._correct}
        return results
