"""Text and image encoders that walk the unmodified CLIP model's ``transformer.resblocks``.

Written once for every method:
- ``TextEncoder``: prompt embeddings -> text features (EOT pooling), optional deep prompts that replace
  the context slots at the input of chosen layers (MaPLe), and sequence truncation: the text transformer
  is causal, so positions after the longest EOT cannot change any pooled feature and are cut off.
- ``ImageEncoder``: images -> features, optionally the token sequence after every layer (GOPro) and
  visual prompts appended / replaced layer by layer (MaPLe).

Blocks run batch-first with ``scaled_dot_product_attention`` on the block's own weights (same math as
its ``nn.MultiheadAttention``; the text mask is the causal one, passed as ``is_causal``).
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .clip_compat import clip

VisionTransformer = clip.model.VisionTransformer


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


class TextEncoder(nn.Module):
    """Prompt embeddings (..., L, D) + token ids (..., L) -> text features (..., E).

    ``tokenized_prompts`` gives the EOT position of every prompt (EOT has the largest token id). Its
    leading shape may be a suffix of the prompts' leading shape: prompts (B, C, L, D) with token ids
    (C, L) encodes every image's C prompts. ``deep_prompts[i]`` (M, D), if given for layer i >= 1,
    replaces positions ``1 .. M`` at the input of layer i.
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

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    def forward(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor,
                deep_prompts: Optional[Sequence[Optional[torch.Tensor]]] = None, truncate: bool = True,
                max_batch: int = 0) -> torch.Tensor:
        lead_shape = prompts.shape[:-2]
        eot = tokenized_prompts.argmax(dim=-1)
        eot = eot.expand(lead_shape).reshape(-1)
        x = prompts.reshape(-1, *prompts.shape[-2:])
        if truncate:
            x = x[:, : int(eot.max()) + 1]
        if max_batch and x.shape[0] > max_batch and not torch.is_grad_enabled():
            chunks = [self._encode(x[i:i + max_batch], eot[i:i + max_batch], deep_prompts)
                      for i in range(0, x.shape[0], max_batch)]
            features = torch.cat(chunks)
        else:
            features = self._encode(x, eot, deep_prompts)
        return features.reshape(*lead_shape, -1)

    def _encode(self, x: torch.Tensor, eot: torch.Tensor, deep_prompts) -> torch.Tensor:
        dtype = self.dtype
        x = x.type(dtype) + self.positional_embedding[: x.shape[1]].type(dtype)
        for i, block in enumerate(self.transformer.resblocks):
            if deep_prompts is not None and i > 0 and i < len(deep_prompts) and deep_prompts[i] is not None:
                prompt = deep_prompts[i].type(dtype).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], prompt, x[:, 1 + prompt.shape[1]:]], dim=1)
            x = residual_block(block, x, causal=True)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
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
        for i, block in enumerate(visual.transformer.resblocks):
            if visual_prompts is not None and 0 < i < len(visual_prompts) and visual_prompts[i] is not None:
                prompt = visual_prompts[i].type(dtype).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, : x.shape[1] - prompt.shape[1]], prompt], dim=1)
            x = residual_block(block, x, causal=False)
            if return_tokens:
                tokens.append(x)
        features = visual.ln_post(x[:, 0])
        if visual.proj is not None:
            features = features @ visual.proj
        return (features, tokens) if return_tokens else features
