"""Memory model of a training step's text side: the bytes autograd keeps for backward, per sequence, times the
sequences of a batch -- measured on a few sequences of each length on any device, so that it predicts GPU
peaks (``torch.cuda.max_memory_allocated``) from a CPU.

``saved_bytes(fn)`` counts the distinct storages autograd saves while ``fn()`` runs (parameters and other
given tensors excluded); ``text_step_bytes`` extrapolates a ``TextEncoder`` pass over per-image prompts from
two sequences per length group, with or without recomputation.
"""
from typing import Callable, Iterable, Optional, Tuple

import torch
import torch.nn as nn

from promptlearn.modeling.encoders import length_groups


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


def _group_sizes(tokenized: torch.Tensor, copies: int):
    """(length, sequences) of each text-encoder call for ``copies`` prompts per class (``length_groups``)."""
    eot = tokenized.argmax(dim=-1)
    counts = torch.bincount(eot + 1).tolist()
    ends = length_groups(tuple((length, count * copies) for length, count in enumerate(counts) if count))
    sizes, start = [], 0
    for end in ends:
        sizes.append((end, copies * sum(counts[start:end + 1])))
        start = end + 1
    return sizes


def sequence_bytes(text_encoder: nn.Module, length: int, device: torch.device,
                   dtype: Optional[torch.dtype] = None, sample: int = 2) -> float:
    """Bytes autograd keeps per sequence of ``length`` tokens in a pass of ``text_encoder`` that needs gradients."""
    dtype = dtype or text_encoder.dtype
    prompts = torch.zeros(sample, length, text_encoder.width, device=device, dtype=dtype, requires_grad=True)
    tokenized = torch.zeros(sample, length, dtype=torch.long, device=device)
    tokenized[:, -1] = 1  # the EOT (the largest id) at the end
    weights = list(text_encoder.parameters())
    recompute, text_encoder.recompute_batch = text_encoder.recompute_batch, 0
    try:
        count, _ = saved_bytes(lambda: text_encoder(prompts, tokenized), exclude=weights)
    finally:
        text_encoder.recompute_batch = recompute
    return count / sample


def text_step_bytes(text_encoder: nn.Module, tokenized: torch.Tensor, copies: int, device: torch.device,
                    recompute_batch: int = 0) -> dict:
    """Predicted activation memory of one text pass over ``copies`` x C prompts (C = rows of ``tokenized``).

    Without recomputation autograd keeps every sequence's activations: sum over length groups of
    sequences x bytes per sequence. With ``recompute_batch`` N it keeps each chunk's input (N x length x
    width values) and, in backward, one chunk's activations at a time.
    """
    element = torch.finfo(text_encoder.dtype).bits // 8
    kept, inputs, largest_chunk = 0.0, 0.0, 0.0
    for length, sequences in _group_sizes(tokenized, copies):
        per_sequence = sequence_bytes(text_encoder, length, device)
        kept += per_sequence * sequences
        inputs += sequences * length * text_encoder.width * element
        largest_chunk = max(largest_chunk, per_sequence * min(sequences, recompute_batch or sequences))
    sequences = copies * tokenized.shape[0]
    if recompute_batch:
        return {"sequences": sequences, "kept_bytes": inputs, "backward_peak_bytes": inputs + largest_chunk}
    return {"sequences": sequences, "kept_bytes": kept, "backward_peak_bytes": kept}
