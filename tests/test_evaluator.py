"""The Classification evaluator on a hand-made example: accuracy, error, macro F1 (over the labels present
in y_true), per-class results, the confusion matrix, and Dassl's exact printed lines."""
import os

import pytest
import torch

from promptlearn.config import get_cfg_default
from promptlearn.evaluation import Classification, build_evaluator
from promptlearn.metrics import compute_accuracy

# One block of the example, repeated 500 times: label 3 is predicted but never true.
#   class 0: 2 true, 1 correct (the other predicted as 1)   -> P = 1,   R = 1/2, F1 = 2/3
#   class 1: 2 true, 2 correct, 1 false positive            -> P = 2/3, R = 1,   F1 = 4/5
#   class 2: 1 true, 0 correct (predicted as 3)             -> F1 = 0
# macro F1 over {0, 1, 2} = (2/3 + 4/5 + 0) / 3 = 22/45 = 48.888...%; accuracy 3/5 = 60%.
BLOCK_TRUE = [0, 0, 1, 1, 2]
BLOCK_PRED = [0, 1, 1, 1, 3]
REPEAT = 500
LAB2CNAME = {0: "circle", 1: "cross", 2: "star", 3: "ring"}


def evaluator_cfg(tmp_path=None, per_class=False, cmat=False):
    cfg = get_cfg_default()
    cfg.TEST.PER_CLASS_RESULT = per_class
    cfg.TEST.COMPUTE_CMAT = cmat
    if tmp_path is not None:
        cfg.OUTPUT_DIR = str(tmp_path)
    return cfg


def feed(evaluator, batch_size=333):
    y_true = torch.tensor(BLOCK_TRUE * REPEAT)
    y_pred = torch.tensor(BLOCK_PRED * REPEAT)
    logits = torch.full((len(y_true), 4), -1.0)
    logits[torch.arange(len(y_true)), y_pred] = 2.0
    logits += 0.01 * torch.randn_like(logits)  # noise below the margin does not change the argmax
    for start in range(0, len(y_true), batch_size):
        evaluator.process(logits[start:start + batch_size], y_true[start:start + batch_size])


def result_lines(log):
    return [line for message in log.messages for line in message.split("\n")]


def test_numbers_and_printed_lines(engine_log):
    evaluator = build_evaluator(evaluator_cfg(), lab2cname=LAB2CNAME)
    assert isinstance(evaluator, Classification)
    feed(evaluator)
    results = evaluator.evaluate()
    assert list(results) == ["accuracy", "error_rate", "macro_f1"]
    assert results["accuracy"] == pytest.approx(60.0)
    assert results["error_rate"] == pytest.approx(40.0)
    assert results["macro_f1"] == pytest.approx(100 * 22 / 45)
    lines = result_lines(engine_log)
    start = lines.index("=> result")
    assert lines[start:start + 6] == [
        "=> result",
        "* total: 2,500",
        "* correct: 1,500",
        "* accuracy: 60.0%",
        "* error: 40.0%",
        "* macro_f1: 48.9%",
    ]
    assert "evaluator: Classification" in lines


def test_per_class_results(engine_log):
    evaluator = Classification(evaluator_cfg(per_class=True), lab2cname=LAB2CNAME)
    feed(evaluator)
    results = evaluator.evaluate()
    assert results["perclass_accuracy"] == pytest.approx((50.0 + 100.0 + 0.0) / 3)
    lines = result_lines(engine_log)
    start = lines.index("=> per-class result")
    assert lines[start:start + 5] == [
        "=> per-class result",
        "* class: 0 (circle)\ttotal: 1,000\tcorrect: 500\tacc: 50.0%",
        "* class: 1 (cross)\ttotal: 1,000\tcorrect: 1,000\tacc: 100.0%",
        "* class: 2 (star)\ttotal: 500\tcorrect: 0\tacc: 0.0%",
        "* average: 50.0%",
    ]


def test_reset_and_rounding(engine_log):
    evaluator = Classification(evaluator_cfg(), lab2cname=LAB2CNAME)
    feed(evaluator)
    evaluator.reset()
    # 2 of 3 correct: 66.666...% prints as 66.7%, the error as 33.3%
    evaluator.process(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1]))
    results = evaluator.evaluate()
    assert results["accuracy"] == pytest.approx(200 / 3)
    lines = result_lines(engine_log)
    assert lines[-5:] == ["* total: 3", "* correct: 2", "* accuracy: 66.7%", "* error: 33.3%", "* macro_f1: 66.7%"]


def test_confusion_matrix_file(tmp_path):
    evaluator = Classification(evaluator_cfg(tmp_path, cmat=True), lab2cname=LAB2CNAME)
    feed(evaluator)
    evaluator.evaluate()
    cmat = torch.load(os.path.join(tmp_path, "cmat.pt"), weights_only=True)
    expected = torch.tensor([[0.5, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=cmat.dtype)
    assert torch.allclose(cmat, expected)


def test_per_class_needs_class_names():
    with pytest.raises(ValueError):
        Classification(evaluator_cfg(per_class=True))


def test_compute_accuracy_top_k():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.35, 0.25, 0.4], [0.2, 0.5, 0.3]])
    target = torch.tensor([2, 0, 1, 1])
    top1, top2 = compute_accuracy(logits, target, topk=(1, 2))
    assert top1.item() == pytest.approx(50.0)  # rows 1 and 3
    assert top2.item() == pytest.approx(75.0)  # row 0 too; row 2's label 1 is third
