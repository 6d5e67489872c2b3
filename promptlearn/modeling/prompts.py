"""Prompt construction shared by CoOp, CoCoOp, MaPLe and GOPro.

A prompt is ``[SOT] [ctx_1 .. ctx_M] [class name tokens] [.] [EOT] [pad]``: the M context vectors are
learned, everything else is CLIP's fixed token embedding. ``PromptLearner`` holds the context ``ctx``,
the fixed ``token_prefix`` (SOT) and ``token_suffix`` (class name, period, EOT) buffers -- the names
CoOp's checkpoints use -- and assembles prompts for a class-token position of end, middle or front.
The two buffers are saved with a checkpoint, as CoOp's are, but never loaded from one
(``CLIPTrainer.filter_loaded_state``): a model evaluated on other classes keeps its own class names.
The buffers are cut after the longest EOT: the text transformer is causal, so nothing later matters.
"""
import logging
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

from ..errors import UserError
from .clip_compat import clip

logger = logging.getLogger(__name__)

CONTEXT_LENGTH = 77
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def clean_classname(name: str) -> str:
    return name.replace("_", " ")


def count_tokens(text: str) -> int:
    """Number of BPE tokens of ``text`` (no SOT/EOT)."""
    return len(clip.clip._tokenizer.encode(text))


def tokenize(texts: List[str]) -> torch.Tensor:
    """(N, 77) token ids; a prompt longer than CLIP's context gives a UserError naming it."""
    try:
        return clip.tokenize(texts).long()
    except RuntimeError as err:
        raise UserError(f"{err}. Shorten the class name or the context (N_CTX / CTX_INIT).") from None


@torch.no_grad()
def embed_tokens(clip_model: nn.Module, tokenized: torch.Tensor) -> torch.Tensor:
    """CLIP's token embeddings of ``tokenized`` in the model's dtype."""
    return clip_model.token_embedding(tokenized).type(clip_model.dtype)


def init_context(clip_model: nn.Module, n_ctx: int, ctx_init: str, n_cls: int = 1, csc: bool = False,
                 honour_n_ctx: bool = False) -> Tuple[torch.Tensor, str]:
    """Initial context vectors and the prompt prefix text that stands in their place.

    With ``ctx_init`` (e.g. "a photo of a") the context is the phrase's token embeddings and M is its
    token count, ignoring ``n_ctx`` (CoOp/CoCoOp). With ``honour_n_ctx`` M stays ``n_ctx``: a shorter
    phrase is preceded by random vectors, a longer one has only its first M tokens learned and the rest
    kept as fixed text (as MaPLe does). Without ``ctx_init``: N(0, 0.02^2) vectors, (M, D) or, for
    class-specific context (``csc``), (C, M, D).
    """
    dtype = clip_model.dtype
    width = clip_model.ln_final.weight.shape[0]
    ctx_init = ctx_init.replace("_", " ").strip()
    if ctx_init:
        n_init = count_tokens(ctx_init)
        phrase = embed_tokens(clip_model, tokenize([ctx_init]))[0, 1:1 + n_init]
        if not honour_n_ctx or n_ctx == n_init:
            return phrase.clone(), ctx_init
        if n_ctx < n_init:
            return phrase[:n_ctx].clone(), ctx_init
        extra = torch.empty(n_ctx - n_init, width, dtype=dtype)
        nn.init.normal_(extra, std=0.02)
        return torch.cat([extra, phrase]), " ".join(["X"] * (n_ctx - n_init) + [ctx_init])
    if n_ctx < 1:
        raise UserError(f"the number of context tokens must be at least 1 without an init phrase, got {n_ctx}")
    shape = (n_cls, n_ctx, width) if csc else (n_ctx, width)
    ctx = torch.empty(*shape, dtype=dtype)
    nn.init.normal_(ctx, std=0.02)
    return ctx, " ".join(["X"] * n_ctx)


class PromptLearner(nn.Module):
    """Learnable context + fixed class-name embeddings -> prompt embeddings (C, L, D).

    ``forward(ctx_shift)`` adds an image-conditioned shift (B, D) or (B, M, D) to the context and returns
    one prompt per image per class, (B, C, L, D) (CoCoOp, GOPro).
    """

    def __init__(self, classnames: List[str], clip_model: nn.Module, n_ctx: int, ctx_init: str = "",
                 csc: bool = False, class_token_position: str = "end", honour_n_ctx: bool = False):
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise UserError(f"class token position must be one of {CLASS_TOKEN_POSITIONS}, got "
                            f'"{class_token_position}"')
        if csc and ctx_init:
            logger.info("Note: an init phrase gives one context shared by all classes (CSC is ignored)")
        classnames = [clean_classname(name) for name in classnames]
        n_cls = len(classnames)
        ctx_vectors, prompt_prefix = init_context(clip_model, n_ctx, ctx_init, n_cls, csc, honour_n_ctx)
        n_ctx = ctx_vectors.shape[-2]
        if class_token_position != "end" and count_tokens(prompt_prefix) != n_ctx:
            raise UserError("a class token position other than end needs the whole init phrase to be learned "
                            "(N_CTX equal to its token count)")
        logger.info(f'Initial context: "{prompt_prefix}"')
        logger.info(f"Number of context words (tokens): {n_ctx}")
        self.ctx = nn.Parameter(ctx_vectors)

        self.classnames = classnames
        self.n_cls = n_cls
        self.n_ctx = n_ctx
        self.prompt_prefix = prompt_prefix
        self.class_token_position = class_token_position
        self.name_lens = [count_tokens(name) for name in classnames]
        prompts = [f"{prompt_prefix} {name}." for name in classnames]
        tokenized = tokenize(prompts)
        length = int(tokenized.argmax(dim=-1).max()) + 1  # keep up to the longest EOT
        tokenized = tokenized[:, :length]
        embedding = embed_tokens(clip_model, tokenized)
        # saved, never loaded: the names of the classes this model is built for
        self.register_buffer("token_prefix", embedding[:, :1], persistent=True)
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx:], persistent=True)
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        self.register_buffer("position_index", self._position_index(length), persistent=False)

    def _position_index(self, length: int) -> Optional[torch.Tensor]:
        """Per class, where each output position is taken from in [prefix, ctx, suffix] (None for "end")."""
        if self.class_token_position == "end":
            return None
        m = self.n_ctx
        rows = []
        for name_len in self.name_lens:
            prefix, ctx, suffix = [0], list(range(1, 1 + m)), list(range(1 + m, length))
            name, rest = suffix[:name_len], suffix[name_len:]
            if self.class_token_position == "middle":
                half = m // 2
                rows.append(prefix + ctx[:half] + name + ctx[half:] + rest)
            else:
                rows.append(prefix + name + ctx + rest)
        return torch.tensor(rows, dtype=torch.long)

    def assemble(self, ctx: torch.Tensor) -> torch.Tensor:
        """Prompts from context ``ctx`` of shape (M, D), (C, M, D) or (B, C, M, D)."""
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        lead = ctx.shape[:-3]
        prefix = self.token_prefix.expand(*lead, -1, -1, -1)
        suffix = self.token_suffix.expand(*lead, -1, -1, -1)
        prompts = torch.cat([prefix, ctx.type(prefix.dtype), suffix], dim=-2)
        if self.position_index is None:
            return prompts
        index = self.position_index.expand(*lead, -1, -1).unsqueeze(-1).expand(*prompts.shape)
        return prompts.gather(-2, index)

    def forward(self, ctx_shift: Optional[torch.Tensor] = None) -> torch.Tensor:
        if ctx_shift is None:
            return self.assemble(self.ctx)
        if ctx_shift.dim() == 2:
            ctx_shift = ctx_shift.unsqueeze(1)  # the same shift for every context token
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        return self.assemble(ctx.unsqueeze(0) + ctx_shift.unsqueeze(1))  # (B, C, M, D)
