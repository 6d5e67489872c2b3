"""Top-k accuracy with Dassl's signature (``compute_accuracy(output, target, topk)``)."""
import torch


def compute_accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1,)) -> list:
    """For each k in ``topk``, the percentage of rows of the logits ``output`` (N, C) whose k highest scores
    include the label in ``target`` (N,), as a one-element tensor. A (logits, ...) tuple uses its first item."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    ranked = output.topk(max(topk), dim=1).indices  # (N, max k), best first
    hit_rank = ranked.eq(target.reshape(-1, 1))  # at most one True per row: where the label ranks
    return [hit_rank[:, :k].any(dim=1).float().mean().mul(100.0).reshape(1) for k in topk]
