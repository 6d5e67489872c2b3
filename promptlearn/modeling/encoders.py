"""Text and image encoders that walk the unmodified CLIP model's ``transformer.resblocks``.

Written once for every method:
- ``TextEncoder``: prompt embeddings -> text features (EOT pooling), optional deep prompts that replace
  the context slots at the input of chosen layers (MaPLe). It spends compute only on the tokens that can
  change a pooled feature: the text transformer is causal, so every prompt is cut after its EOT, and
  prompts of a batch are grouped by length (``length_groups``) so that a short class name is not padded
  to the longest one; the last layer runs for the EOT position alone. Large per-image prompt batches are
  split into chunks: without gradients to bound memory (``max_batch``), and with gradients when
  ``recompute_batch`` is set, each chunk then keeping only its input and recomputing its activations in
  backward (``torch.utils.checkpoint``), so that ImageNet's 1000 classes x every image fit one GPU.
- ``ImageEncoder``: images -> features, optionally the token sequence after every layer (GOPro) and
  visual prompts appended / replaced layer by layer (MaPLe). Without the token sequences the last layer
  runs for the class token alone.

Blocks run batch-first with ``scaled_dot_product_attention`` on the block's own weights (same math as
its ``nn.MultiheadAttention``; the text mask is the causal one, passed as ``is_causal``).
"""
import functools
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..errors import UserError
from .clip_compat import clip

VisionTransformer = clip.model.VisionTransformer

#: prompts of different lengths share a text-encoder call while the tokens it processes stay within this
#: fraction of the tokens that matter (fewer, larger calls; see ``length_groups``)
LENGTH_SLACK = 0.1


def multihead_attention(attn: nn.MultiheadAttention, x: torch.Tensor, causal: bool) -> torch.Tensor:
    """Self-attention of ``attn`` over batch-first ``x`` (N, L, D)."""
    n, length, dim = x.shape
    heads = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(n, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=causal)
    out = out.transpose(1, 2).reshape(n, length, dim)
    return attn.out_proj(out)


def residual_block(block: nn.Module, x: torch.Tensor, causal: bool) -> torch.Tensor:
    """One CLIP ``ResidualAttentionBlock`` (pre-LN attention, then pre-LN MLP) on batch-first ``x``."""
    x = x + multihead_attention(block.attn, block.ln_1(x), causal)
    return x + block.mlp(block.ln_2(x))


def residual_block_at(block: nn.Module, x: torch.Tensor, position: torch.Tensor, causal: bool) -> torch.Tensor:
    """The output (N, D) of ``residual_block`` at one position per sequence (``position`` (N,)), computed for
    that position alone: its query attends to every key (to the keys up to it if ``causal``), and the
    MLP runs on that one token. Equals ``residual_block(block, x, causal)[arange(N), position]``."""
    n, length, dim = x.shape
    attn = block.attn
    heads = attn.num_heads
    rows = torch.arange(n, device=x.device)
    hidden = block.ln_1(x)
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    q = F.linear(hidden[rows, position], weight[:dim], bias[:dim]).view(n, heads, 1, dim // heads)
    kv = F.linear(hidden, weight[dim:], bias[dim:]).view(n, length, 2, heads, dim // heads).permute(2, 0, 3, 1, 4)
    mask = None
    if causal:
        mask = (torch.arange(length, device=x.device) <= position[:, None]).view(n, 1, 1, length)
    out = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask)
    y = x[rows, position] + attn.out_proj(out.reshape(n, dim))
    return y + block.mlp(block.ln_2(y))


@functools.lru_cache(maxsize=256)
def length_groups(length_counts: Tuple[Tuple[int, int], ...], slack: float = LENGTH_SLACK) -> Tuple[int, ...]:
    """The fewest groups of prompt lengths whose padded cost stays within ``1 + slack`` of the tokens that matter.

    ``length_counts``: (length, number of prompts) pairs in increasing length. A group holds consecutive
    lengths and pads them to its longest; it costs (its prompts) x (its longest length) tokens. Returns
    each group's longest length, increasing. Exact dynamic programme over the distinct lengths (at most
    CLIP's 77), cached: a batch's lengths repeat every step.
    """
    lengths = [length for length, _ in length_counts]
    cumulative = [0]
    for _, count in length_counts:
        cumulative.append(cumulative[-1] + count)
    needed = sum(length * count for length, count in length_counts)
    m = len(lengths)
    best = [0] + [float("inf")] * m  # best[j]: least cost of the j shortest lengths in k groups
    splits: List[List[int]] = []
    for k in range(1, m + 1):
        cost = [float("inf")] * (m + 1)
        split = [0] * (m + 1)
        for j in range(k, m + 1):  # the k-th group covers lengths i .. j-1
            for i in range(k - 1, j):
                candidate = best[i] + (cumulative[j] - cumulative[i]) * lengths[j - 1]
                if candidate < cost[j]:
                    cost[j], split[j] = candidate, i
        splits.append(split)
        best = cost
        if best[m] <= (1 + slack) * needed:
            break
    ends, j = [], m
    for split in reversed(splits):
        ends.append(lengths[j - 1])
        j = split[j]
    return tuple(reversed(ends))


def tokens_processed(tokenized_prompts: torch.Tensor, mode: str = "grouped", slack: float = LENGTH_SLACK) -> int:
    """Sequence positions the text transformer runs for these prompts: ``"full"`` (every position of the
    context), ``"longest"`` (all cut after the longest EOT) or ``"grouped"`` (``length_groups``); the tokens
    that matter, up to each prompt's own EOT, are ``"needed"``."""
    eot = tokenized_prompts.reshape(-1, tokenized_prompts.shape[-1]).argmax(dim=-1)
    if mode == "full":
        return eot.numel() * tokenized_prompts.shape[-1]
    if mode == "longest":
        return eot.numel() * (int(eot.max()) + 1)
    lengths = (eot + 1).tolist()
    if mode == "needed":
        return sum(lengths)
    if mode != "grouped":
        raise ValueError(f"unknown mode {mode!r}")
    counts = torch.bincount(eot + 1).tolist()
    ends = length_groups(tuple((length, c) for length, c in enumerate(counts) if c), slack)
    return sum(min(end for end in ends if end >= length) for length in lengths)


def _requires_grad(x: torch.Tensor, deep_prompts) -> bool:
    tensors = [x, *(p for p in (deep_prompts or ()) if p is not None)]
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


class TextEncoder(nn.Module):
    """Prompt embeddings (..., L, D) + token ids (..., L) -> text features (..., E).

    ``tokenized_prompts`` gives the EOT position of every prompt (EOT has the largest token id). Its
    leading shape may be a suffix of the prompts' leading shape: prompts (B, C, L, D) with token ids
    (C, L) encodes every image's C prompts. ``deep_prompts[i]`` (M, D), if given for layer i >= 1,
    replaces positions ``1 .. M`` at the input of layer i.

    ``truncate=False`` runs all L positions of every prompt (the reference code's cost);
    ``group_by_length=False`` cuts all prompts after the longest EOT; the default cuts each group of
    ``length_groups`` after its own longest EOT. ``max_batch`` (no gradient) and ``recompute_batch``
    (gradient; an attribute, set from ``MODEL.TEXT_RECOMPUTE_BATCH``) bound the sequences per call.
    """

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.width = clip_model.transformer.width
        self.num_layers = len(clip_model.transformer.resblocks)
        self.output_dim = clip_model.text_projection.shape[1]
        #: > 0: passes that need gradients run in chunks of this many sequences, recomputed in backward
        self.recompute_batch = 0

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    def forward(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor,
                deep_prompts: Optional[Sequence[Optional[torch.Tensor]]] = None, truncate: bool = True,
                max_batch: int = 0, group_by_length: bool = True) -> torch.Tensor:
        lead_shape = prompts.shape[:-2]
        eot = tokenized_prompts.argmax(dim=-1)
        eot = eot.expand(lead_shape).reshape(-1)
        x = prompts.reshape(-1, *prompts.shape[-2:])
        if not truncate:
            features = self._encode_batch(x, eot, deep_prompts, max_batch)
        elif not group_by_length:
            features = self._encode_batch(x[:, : int(eot.max()) + 1], eot, deep_prompts, max_batch)
        else:
            features = self._encode_grouped(x, eot, deep_prompts, max_batch)
        return features.reshape(*lead_shape, -1)

    def _encode_grouped(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts, max_batch: int) -> torch.Tensor:
        counts = torch.bincount(eot + 1).tolist()
        ends = length_groups(tuple((length, count) for length, count in enumerate(counts) if count))
        if len(ends) == 1:
            return self._encode_batch(x[:, : ends[0]], eot, deep_prompts, max_batch)
        order = torch.argsort(eot, stable=True)
        sizes, start = [], 0
        for end in ends:
            sizes.append(sum(counts[start: end + 1]))
            start = end + 1
        pieces = [self._encode_batch(x[:, :end].index_select(0, index), eot[index], deep_prompts, max_batch)
                  for end, index in zip(ends, order.split(sizes))]
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return torch.cat(pieces).index_select(0, inverse)

    def _encode_batch(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts, max_batch: int) -> torch.Tensor:
        """``_encode`` over ``x`` (N, L, D), in chunks where a batch size bounds the call."""
        if self.recompute_batch and _requires_grad(x, deep_prompts):
            size = self.recompute_batch
            return torch.cat([checkpoint(self._encode, x[i:i + size], eot[i:i + size], deep_prompts,
                                         use_reentrant=False, preserve_rng_state=False)
                              for i in range(0, x.shape[0], size)])
        if max_batch and x.shape[0] > max_batch and not torch.is_grad_enabled():
            return torch.cat([self._encode(x[i:i + max_batch], eot[i:i + max_batch], deep_prompts)
                              for i in range(0, x.shape[0], max_batch)])
        return self._encode(x, eot, deep_prompts)

    def _encode(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts) -> torch.Tensor:
        dtype = self.dtype
        x = x.type(dtype) + self.positional_embedding[: x.shape[1]].type(dtype)
        blocks = self.transformer.resblocks
        for i, block in enumerate(blocks):
            if deep_prompts is not None and i > 0 and i < len(deep_prompts) and deep_prompts[i] is not None:
                prompt = deep_prompts[i].type(dtype).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], prompt, x[:, 1 + prompt.shape[1]:]], dim=1)
            if i < len(blocks) - 1:
                x = residual_block(block, x, causal=True)
            else:  # only the EOT position is pooled
                x = residual_block_at(block, x, eot, causal=True)
        return self.ln_final(x).type(dtype) @ self.text_projection


class ImageEncoder(nn.Module):
    """Images (B, 3, H, W) -> features (B, E) of CLIP's image tower.

    For ViT backbones, ``return_tokens=True`` also returns the token sequence after every layer (a list
    of (B, T, W), residual stream before ``ln_post``), and ``visual_prompts`` inserts prompts: entry 0
    (M, W) is appended after the patch tokens (before ``ln_pre``), entry i >= 1 replaces the last M
    tokens at the input of layer i.
    """

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.visual = clip_model.visual
        self.is_vit = isinstance(self.visual, VisionTransformer)
        self.output_dim = self.visual.output_dim
        self.input_resolution = self.visual.input_resolution
        if self.is_vit:
            self.width = self.visual.conv1.out_channels
            self.num_layers = len(self.visual.transformer.resblocks)
            self.num_tokens = self.visual.positional_embedding.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def require_vit(self, what: str) -> None:
        if not self.is_vit:
            raise UserError(f"{what} needs a ViT backbone (ViT-B/16, ViT-B/32, ViT-L/14, tiny-ViT, ...); "
                            "ResNet backbones have no token sequence per layer")

    def forward(self, images: torch.Tensor, return_tokens: bool = False,
                visual_prompts: Optional[Sequence[Optional[torch.Tensor]]] = None):
        if not self.is_vit:
            if return_tokens or visual_prompts is not None:
                self.require_vit("per-layer tokens or visual prompts")
            return self.visual(images.type(self.dtype))
        visual = self.visual
        dtype = self.dtype
        x = visual.conv1(images.type(dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = visual.class_embedding.to(dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(dtype)
        if visual_prompts is not None and visual_prompts[0] is not None:
            x = torch.cat([x, visual_prompts[0].type(dtype).expand(x.shape[0], -1, -1)], dim=1)
        x = visual.ln_pre(x)
        tokens: List[torch.Tensor] = []
        blocks = visual.transformer.resblocks
        for i, block in enumerate(blocks):
            if visual_prompts is not None and 0 < i < len(visual_prompts) and visual_prompts[i] is not None:
                prompt = visual_prompts[i].type(dtype).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, : x.shape[1] - prompt.shape[1]], prompt], dim=1)
            if return_tokens or i < len(blocks) - 1:
                x = residual_block(block, x, causal=False)
                if return_tokens:
                    tokens.append(x)
            else:  # only the class token is pooled
                x = residual_block_at(block, x, x.new_zeros(x.shape[0], dtype=torch.long), causal=False)
        features = visual.ln_post(x if x.dim() == 2 else x[:, 0])
        if visual.proj is not None:
            features = features @ visual.proj
        return (features, tokens) if return_tokens else features
