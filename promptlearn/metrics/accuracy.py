"""Top-k accuracy (Dassl's ``compute_accuracy``)."""
import torch


def compute_accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1,)) -> list:
    """Top-k accuracies in percent, as 0-dim tensors, for logits ``output`` (N, C) and labels ``target`` (N,)."""
    maxk = max(topk)
    batch_size = target.size(0)
    if isinstance(output, (tuple, list)):
        output = output[0]
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res
