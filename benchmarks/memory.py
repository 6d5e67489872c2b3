"""Memory model of a training step's text side: the bytes autograd keeps for backward, per sequence, times the
sequences of a batch -- measured on a few sequences of each length on any device, so that it predicts GPU
peaks (``torch.cuda.max_memory_allocated``) from a CPU.

``saved_bytes(fn)`` counts the distinct storages autograd saves while ``fn()`` runs (parameters and other
given tensors excluded); ``text_step_bytes`` extrapolates a ``TextEncoder`` pass over per-image prompts
from passes over 2 and 4 prompts of each length the pass groups, with or without recomputation.
"""
from typing import Callable, Iterable, Optional, Tuple

import torch
import torch.nn as nn

from promptlearn.modeling.encoders import call_overhead_tokens, plan_groups, worth_sharing


def saved_bytes(fn: Callable, exclude: Iterable[torch.Tensor] = ()) -> Tuple[int, object]:
    """(bytes of the tensors autograd saves for backward while ``fn()`` runs, ``fn()``'s result).

    Each storage counts once (views of one tensor share it); storages of ``exclude`` (e.g. the frozen
    weights, already in memory) do not count.
    """
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    storages = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    return sum(storages.values()), out


def _pass_bytes(text_encoder: nn.Module, length: int, classes: int, prefix: int, device: torch.device) -> int:
    """Bytes kept by one pass over ``classes`` prompts of ``prefix`` shared + ``length`` own positions."""
    prompts = torch.zeros(1, classes, prefix + length, text_encoder.width, device=device, dtype=text_encoder.dtype,
                          requires_grad=True)
    tokenized = torch.ones(classes, prefix + length, dtype=torch.long, device=device)
    tokenized[:, -1] = 2  # the EOT (the largest id) last
    settings = text_encoder.recompute_batch, text_encoder.call_overhead
    text_encoder.recompute_batch, text_encoder.call_overhead = 0, 0  # the large pass's structure, on a sample
    try:
        count, _ = saved_bytes(lambda: text_encoder(prompts, tokenized, shared_prefix=prefix),
                               exclude=list(text_encoder.parameters()))
    finally:
        text_encoder.recompute_batch, text_encoder.call_overhead = settings
    return count


def sequence_bytes(text_encoder: nn.Module, length: int, device: torch.device, prefix: int = 0) -> Tuple[float, float]:
    """(bytes kept per prompt of ``length`` own positions, bytes kept once per image for ``prefix`` shared ones)
    in a pass of ``text_encoder`` that needs gradients."""
    two, four = (_pass_bytes(text_encoder, length, classes, prefix, device) for classes in (2, 4))
    per_prompt = (four - two) / 2
    return per_prompt, two - 2 * per_prompt


def text_step_bytes(text_encoder: nn.Module, tokenized: torch.Tensor, copies: int, device: torch.device,
                    recompute_batch: int = 0, shared_prefix: int = 0, target: Optional[torch.device] = None) -> dict:
    """Predicted memory of one text pass over ``copies`` (images x views) x C prompts (C = rows of ``tokenized``),
    counted on ``device`` for a run on ``target`` (default: the same; it decides the length groups).

    Without recomputation autograd keeps every prompt's activations: sum over the length groups of prompts
    x bytes per prompt, plus the shared positions once per image. With ``recompute_batch`` N each chunk
    keeps its input (N x length x width values) and, in backward, one chunk's activations exist at a time.
    """
    element = torch.finfo(text_encoder.dtype).bits // 8
    overhead = call_overhead_tokens(text_encoder, target or device)
    if not worth_sharing(copies, tokenized.shape[0], shared_prefix, overhead):  # as the encoder decides
        shared_prefix = 0
    lengths = tokenized.argmax(dim=-1) + 1 - shared_prefix
    kept = inputs = largest_chunk = 0.0
    per_image = 0.0
    for end, index in plan_groups(lengths, copies, overhead=overhead):
        per_prompt, per_image = sequence_bytes(text_encoder, end, device, shared_prefix)
        prompts = copies * index.numel()
        kept += per_prompt * prompts
        inputs += prompts * end * text_encoder.width * element
        largest_chunk = max(largest_chunk, per_prompt * min(prompts, recompute_batch or prompts))
    shared = copies * per_image
    prediction = {"sequences": copies * tokenized.shape[0], "kept_bytes": shared + kept}
    if recompute_batch:
        prediction["kept_bytes"] = shared + inputs
        prediction["backward_peak_bytes"] = shared + inputs + largest_chunk
    else:
        prediction["backward_peak_bytes"] = prediction["kept_bytes"]
    return prediction
