"""Text and image encoders that walk the unmodified CLIP model's ``transformer.resblocks``.

Written once for every method:
- ``TextEncoder``: prompt embeddings -> text features (EOT pooling), optional deep prompts that replace
  the context slots at the input of chosen layers (MaPLe). It spends compute only on the tokens that can
  change a pooled feature. The text transformer is causal, so
  - every prompt is cut after its EOT, and the prompts of a batch are grouped by length
    (``length_groups``), so that a short class name is not padded to the longest one;
  - positions every class's prompt shares (SOT and the context words, when the class name comes last)
    compute the same states for every class: they run once per image, and the classes' remaining
    tokens attend to their keys and values (``shared_prefix``);
  - the last layer runs for the EOT position alone.
  Large per-image prompt batches are split into chunks: without gradients to bound memory
  (``max_batch``), and with gradients when ``recompute_batch`` is set, each chunk then keeping only its
  input and recomputing its activations in backward (``torch.utils.checkpoint``), so that ImageNet's
  1000 classes x every image fit one GPU.
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
from torch.nn.attention.bias import causal_lower_right
from torch.utils.checkpoint import checkpoint

from ..errors import UserError
from .clip_compat import clip
from .prompts import PromptLearner, count_tokens

VisionTransformer = clip.model.VisionTransformer

#: prompts of different lengths share a text-encoder call while the tokens it processes stay within this
#: fraction of the tokens that matter (fewer, larger calls; see ``length_groups``)
LENGTH_SLACK = 0.1
#: the fixed cost of one more pass through the text transformer (its operations' launch and dispatch), as the
#: floating-point work it could have done instead: about 2 ms of a CPU core, or 1 ms of a GPU's tensor cores.
#: A split into length groups or a shared prefix that saves fewer tokens' work than this is not made.
CALL_OVERHEAD_FLOPS = {"cpu": 1e8, "cuda": 3e11}

KeysValues = Tuple[torch.Tensor, torch.Tensor]


def _qkv(attn: nn.MultiheadAttention, x: torch.Tensor):
    """Queries, keys and values of batch-first ``x`` (N, L, D), each (N, heads, L, D / heads)."""
    n, length, dim = x.shape
    heads = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(n, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def _merge_heads(attn: nn.MultiheadAttention, out: torch.Tensor) -> torch.Tensor:
    n, heads, length, head_dim = out.shape
    return attn.out_proj(out.transpose(1, 2).reshape(n, length, heads * head_dim))


def _attention_block(block: nn.Module, x: torch.Tensor, causal: bool, prefix: Optional[KeysValues] = None):
    """One CLIP ``ResidualAttentionBlock`` (pre-LN attention, then pre-LN MLP) on batch-first ``x``.

    ``prefix``: keys and values (N, heads, P, D / heads) of P earlier positions that ``x``'s positions
    also attend to (causal: ``x`` continues them). Returns the output and ``x``'s own keys and values.
    """
    q, k, v = _qkv(block.attn, block.ln_1(x))
    if prefix is None:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        keys, values = torch.cat([prefix[0], k], dim=2), torch.cat([prefix[1], v], dim=2)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=causal_lower_right(q.shape[2], keys.shape[2]))
    x = x + _merge_heads(block.attn, out)
    return x + block.mlp(block.ln_2(x)), (k, v)


def residual_block(block: nn.Module, x: torch.Tensor, causal: bool,
                   prefix: Optional[KeysValues] = None) -> torch.Tensor:
    return _attention_block(block, x, causal, prefix)[0]


def residual_block_at(block: nn.Module, x: torch.Tensor, position: torch.Tensor, causal: bool,
                      prefix: Optional[KeysValues] = None) -> torch.Tensor:
    """The output (N, D) of ``residual_block`` at one position per sequence (``position`` (N,)), computed for
    that position alone: its query attends to every key (to the keys up to it if ``causal``, after the
    ``prefix`` ones), and the MLP runs on that one token. Equals ``residual_block(...)[arange(N), position]``."""
    n, length, dim = x.shape
    attn = block.attn
    heads = attn.num_heads
    rows = torch.arange(n, device=x.device)
    hidden = block.ln_1(x)
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    q = F.linear(hidden[rows, position], weight[:dim], bias[:dim]).view(n, heads, 1, dim // heads)
    kv = F.linear(hidden, weight[dim:], bias[dim:]).view(n, length, 2, heads, dim // heads).permute(2, 0, 3, 1, 4)
    keys, values = kv[0], kv[1]
    offset = 0
    if prefix is not None:
        keys, values = torch.cat([prefix[0], keys], dim=2), torch.cat([prefix[1], values], dim=2)
        offset = prefix[0].shape[2]
    mask = None
    if causal:
        mask = (torch.arange(keys.shape[2], device=x.device) <= offset + position[:, None]).view(n, 1, 1, -1)
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
    y = x[rows, position] + attn.out_proj(out.reshape(n, dim))
    return y + block.mlp(block.ln_2(y))


def call_overhead_tokens(encoder: nn.Module, device: torch.device) -> int:
    """``CALL_OVERHEAD_FLOPS`` in tokens of ``encoder`` (a transformer layer does ~24 width^2 operations per token),
    unless ``encoder.call_overhead`` sets it."""
    if getattr(encoder, "call_overhead", None) is not None:
        return encoder.call_overhead
    flops_per_token = 24 * encoder.width ** 2 * encoder.num_layers
    return int(CALL_OVERHEAD_FLOPS.get(device.type, CALL_OVERHEAD_FLOPS["cpu"]) / flops_per_token)


def worth_sharing(images: int, classes: int, prefix: int, overhead: int) -> bool:
    """Whether running ``prefix`` shared positions once per image saves more tokens than their own pass costs."""
    return images * (classes - 1) * prefix > overhead


@functools.lru_cache(maxsize=256)
def length_groups(length_counts: Tuple[Tuple[int, int], ...], slack: float = LENGTH_SLACK,
                  overhead: int = 0) -> Tuple[int, ...]:
    """The fewest groups of prompt lengths whose padded cost stays within ``1 + slack`` of the tokens that matter,
    or that a further group would improve by no more than ``overhead`` tokens (the cost of one more call).

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
    previous = float("inf")
    splits: List[List[int]] = []
    for k in range(1, m + 1):
        cost = [float("inf")] * (m + 1)
        split = [0] * (m + 1)
        for j in range(k, m + 1):  # the k-th group covers lengths i .. j-1
            for i in range(k - 1, j):
                candidate = best[i] + (cumulative[j] - cumulative[i]) * lengths[j - 1]
                if candidate < cost[j]:
                    cost[j], split[j] = candidate, i
        if splits and previous - cost[m] <= overhead:
            break  # one more group would not pay for its call
        splits.append(split)
        best, previous = cost, cost[m]
        if best[m] <= (1 + slack) * needed:
            break
    ends, j = [], m
    for split in reversed(splits):
        ends.append(lengths[j - 1])
        j = split[j]
    return tuple(reversed(ends))


def plan_groups(lengths: torch.Tensor, copies: int = 1, grouped: bool = True,
                overhead: int = 0) -> List[Tuple[int, torch.Tensor]]:
    """The text-encoder calls for prompts of these token ``lengths`` (C,), each taken ``copies`` times (once
    per image): (padded length, indices of the prompts) per call; one call in the prompts' own order when
    ``grouped`` is False or one group suffices, else the prompts in increasing length."""
    counts = torch.bincount(lengths).tolist()
    ends = length_groups(tuple((length, count * copies) for length, count in enumerate(counts) if count),
                         overhead=overhead)
    if not grouped or len(ends) == 1:
        return [(len(counts) - 1, torch.arange(lengths.numel(), device=lengths.device))]
    order = torch.argsort(lengths, stable=True)
    sizes, start = [], 0
    for end in ends:
        sizes.append(sum(counts[start: end + 1]))
        start = end + 1
    return list(zip(ends, order.split(sizes)))


def common_prefix(tokenized_prompts: torch.Tensor) -> int:
    """Positions at which every prompt of ``tokenized_prompts`` (C, L) has the same token id."""
    same = (tokenized_prompts == tokenized_prompts[:1]).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0]) if differs.numel() else tokenized_prompts.shape[-1]


def tokens_processed(tokenized_prompts: torch.Tensor, mode: str = "grouped", images: int = 1,
                     shared_prefix: int = 0, overhead: int = 0) -> int:
    """Sequence positions the text transformer runs for ``images`` x these prompts (C, L): ``"full"`` (every
    position of the context), ``"longest"`` (all cut after the longest EOT), ``"grouped"`` (``length_groups``
    with a call ``overhead``; with ``shared_prefix`` P, the first P positions once per image); ``"needed"``:
    each prompt up to its EOT."""
    eot = tokenized_prompts.argmax(dim=-1)
    lengths = eot + 1
    if mode == "full":
        return images * eot.numel() * tokenized_prompts.shape[-1]
    if mode == "longest":
        return images * eot.numel() * int(lengths.max())
    if mode == "needed":
        return images * int(lengths.sum())
    if mode != "grouped":
        raise ValueError(f"unknown mode {mode!r}")
    calls = plan_groups(lengths - shared_prefix, images, overhead=overhead)
    return images * (shared_prefix + sum(end * index.numel() for end, index in calls))


def class_prompt_prefix(learner: Optional[nn.Module], tokenized_prompts: torch.Tensor) -> Optional[int]:
    """Positions that every class's prompt of ``learner`` shares, for ``TextEncoder(shared_prefix=...)``.

    A ``PromptLearner`` with one context for all classes and the class name last builds every prompt as
    SOT, the context (one tensor, or one per image, expanded over the classes) and the prompt prefix's fixed
    words, then the class name: 1 + the prefix's tokens. None (let the encoder decide) for other learners,
    class-specific contexts or other class-token positions, or token ids that are not the learner's. A
    subclass that changes how prompts are assembled declares ``shares_class_prefix = True`` if it keeps this.
    """
    if not isinstance(learner, PromptLearner) or tokenized_prompts is not learner.tokenized_prompts:
        return None
    cls = type(learner)
    kept = cls.forward is PromptLearner.forward and cls.assemble is PromptLearner.assemble
    if not (kept or cls.__dict__.get("shares_class_prefix", False)):
        return None
    if learner.class_token_position != "end" or learner.ctx.dim() != 2:
        return None
    return 1 + count_tokens(learner.prompt_prefix)


def _requires_grad(tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class TextEncoder(nn.Module):
    """Prompt embeddings (..., L, D) + token ids (..., L) -> text features (..., E).

    ``tokenized_prompts`` gives the EOT position of every prompt (EOT has the largest token id). Its
    leading shape may be a suffix of the prompts' leading shape: prompts (B, C, L, D) with token ids
    (C, L) encodes every image's C prompts. ``deep_prompts[i]`` (M, D), if given for layer i >= 1,
    replaces positions ``1 .. M`` at the input of layer i.

    ``truncate=False`` runs all L positions of every prompt (the reference code's cost);
    ``group_by_length=False`` cuts all prompts after the longest EOT; the default cuts each group of
    ``length_groups`` after its own longest EOT. ``shared_prefix`` P: the first P positions of the C
    prompts of an image are the same (the caller built them from one context, so that their gradient is
    the sum over classes); None: found from the token ids when no gradient is needed, else 0. Either way
    the embeddings are checked equal before they are shared. ``max_batch`` (no gradient) and
    ``recompute_batch`` (gradient; an attribute, set from ``MODEL.TEXT_RECOMPUTE_BATCH``) bound the
    sequences per call.
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
        #: the fixed cost of a pass in tokens; None: ``CALL_OVERHEAD_FLOPS`` of the device
        self.call_overhead: Optional[int] = None

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    def forward(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor,
                deep_prompts: Optional[Sequence[Optional[torch.Tensor]]] = None, truncate: bool = True,
                max_batch: int = 0, group_by_length: bool = True, shared_prefix: Optional[int] = None) -> torch.Tensor:
        lead_shape = prompts.shape[:-2]
        length, width = prompts.shape[-2:]
        eot = tokenized_prompts.argmax(dim=-1)
        per_class = tokenized_prompts.dim() == 2 and tuple(lead_shape[-1:]) == tuple(tokenized_prompts.shape[:1])
        if not per_class:  # token ids broadcast over the prompts: one row of ids per prompt
            eot = eot.expand(lead_shape).reshape(-1)
        x = prompts.reshape(-1, eot.numel(), length, width)  # (images, C, L, D)
        if not truncate:
            group_by_length, shared_prefix = False, 0
        elif shared_prefix != 0:
            shared_prefix = self._shareable(x, tokenized_prompts if per_class else None, eot, deep_prompts,
                                            shared_prefix)
        features = self._encode_classes(x, eot, deep_prompts, max_batch, group_by_length, shared_prefix or 0,
                                        full_length=not truncate)
        return features.reshape(*lead_shape, -1)

    def _shareable(self, x: torch.Tensor, tokenized_prompts: Optional[torch.Tensor], eot: torch.Tensor,
                   deep_prompts, declared: Optional[int]) -> int:
        """How many leading positions the C prompts of each image may share (0: none)."""
        if x.shape[1] < 2:
            return 0
        if declared is None:
            if tokenized_prompts is None or _requires_grad([x, *(deep_prompts or ())]):
                return 0
            declared = common_prefix(tokenized_prompts)
        prefix = min(declared, int(eot.min()))  # every EOT stays after the shared positions
        replaced = max((p.shape[0] for p in (deep_prompts or ()) if p is not None), default=0)
        if prefix < 2 or (replaced and prefix < 1 + replaced):
            return 0
        if not worth_sharing(x.shape[0], x.shape[1], prefix, call_overhead_tokens(self, x.device)):
            return 0
        head = x[:, :, :prefix]
        return prefix if torch.equal(head, head[:, :1].expand_as(head)) else 0

    def _encode_classes(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts, max_batch: int, grouped: bool,
                        prefix: int, full_length: bool = False) -> torch.Tensor:
        """Features (images, C, E) of ``x`` (images, C, L, D) whose prompts end at ``eot`` (C,)."""
        images, classes = x.shape[:2]
        prefix_states = self._prefix_states(x[:, 0, :prefix], deep_prompts) if prefix else None
        lengths = eot + 1 - prefix
        calls = [(x.shape[2], torch.arange(classes, device=x.device))] if full_length else \
            plan_groups(lengths, images, grouped, call_overhead_tokens(self, x.device))
        pieces = []
        for end, index in calls:
            part = x[:, :, prefix:prefix + end]
            part = (part.index_select(1, index) if len(calls) > 1 else part).reshape(-1, end, x.shape[-1])
            image_index = torch.arange(images, device=x.device).repeat_interleave(index.numel())
            features = self._encode_batch(part, (eot[index] - prefix).repeat(images), deep_prompts, max_batch,
                                          prefix_states, image_index, prefix)
            pieces.append(features.view(images, index.numel(), -1))
        if len(calls) == 1:
            return pieces[0]
        order = torch.cat([index for _, index in calls])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return torch.cat(pieces, dim=1).index_select(1, inverse)

    def _prefix_states(self, head: torch.Tensor, deep_prompts) -> List[KeysValues]:
        """Keys and values, at every layer, of the positions the C prompts of each image share (images, P, D)."""
        dtype = self.dtype
        x = head.type(dtype) + self.positional_embedding[: head.shape[1]].type(dtype)
        blocks = self.transformer.resblocks
        states = []
        for i, block in enumerate(blocks):
            x = self._insert_deep_prompts(x, deep_prompts, i)
            if i < len(blocks) - 1:
                x, keys_values = _attention_block(block, x, causal=True)
            else:  # the last layer's output at these positions is not pooled
                keys_values = _qkv(block.attn, block.ln_1(x))[1:]
            states.append(keys_values)
        return states

    def _encode_batch(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts, max_batch: int,
                      prefix_states=None, image_index=None, offset: int = 0) -> torch.Tensor:
        """``_encode`` over ``x`` (N, L, D), in chunks where a batch size bounds the call."""
        tensors = [x, *(deep_prompts or ()), *(t for kv in (prefix_states or ()) for t in kv)]
        if self.recompute_batch and _requires_grad(tensors):
            size = self.recompute_batch
        elif max_batch and x.shape[0] > max_batch and not torch.is_grad_enabled():
            size = max_batch
        else:
            return self._encode(x, eot, deep_prompts, prefix_states, image_index, offset)
        chunks = []
        for i in range(0, x.shape[0], size):
            args = (x[i:i + size], eot[i:i + size], deep_prompts, prefix_states,
                    None if image_index is None else image_index[i:i + size], offset)
            chunks.append(checkpoint(self._encode, *args, use_reentrant=False, preserve_rng_state=False)
                          if torch.is_grad_enabled() else self._encode(*args))
        return torch.cat(chunks)

    def _insert_deep_prompts(self, x: torch.Tensor, deep_prompts, layer: int) -> torch.Tensor:
        if deep_prompts is None or not 0 < layer < len(deep_prompts) or deep_prompts[layer] is None:
            return x
        prompt = deep_prompts[layer].type(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :1], prompt, x[:, 1 + prompt.shape[1]:]], dim=1)

    def _encode(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts, prefix_states=None, image_index=None,
                offset: int = 0) -> torch.Tensor:
        """Features of ``x`` (N, L, D) at positions ``offset ..``; ``prefix_states``: the keys and values of the
        ``offset`` positions before them, per image (``image_index`` (N,)); ``eot`` counts from ``offset``."""
        dtype = self.dtype
        x = x.type(dtype) + self.positional_embedding[offset: offset + x.shape[1]].type(dtype)
        blocks = self.transformer.resblocks
        for i, block in enumerate(blocks):
            prefix = None
            if prefix_states is None:
                x = self._insert_deep_prompts(x, deep_prompts, i)
            else:  # deep prompts replace shared positions: they are in the prefix's states
                prefix = tuple(t.index_select(0, image_index) for t in prefix_states[i])
            if i < len(blocks) - 1:
                x = residual_block(block, x, causal=True, prefix=prefix)
            else:  # only the EOT position is pooled
                x = residual_block_at(block, x, eot, causal=True, prefix=prefix)
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
