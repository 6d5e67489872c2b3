"""CoCoOp (Zhou et al., CVPR 2022): CoOp's learnable context plus a light meta-net that turns each image's
feature into a shift added to every context token, so that every image gets its own prompt for each class."""
from collections import OrderedDict
from typing import List

import torch
import torch.nn as nn
from torch.nn import functional as F
from yacs.config import CfgNode as CN

from promptlearn.engine import TRAINER_REGISTRY, CLIPTrainer
from promptlearn.modeling import PromptedCLIP, PromptLearner


class ConditionalPromptLearner(PromptLearner):
    """CoOp's prompt learner plus ``meta_net`` (Linear vis_dim -> vis_dim // 16, ReLU, Linear -> ctx_dim).

    ``forward(image_features)`` takes L2-normalized image features (B, E) and returns one prompt per image
    per class, (B, C, L, D).
    """

    shares_class_prefix = True  # the shift is added to the one context of all classes: prompts still share it

    def __init__(self, classnames: List[str], clip_model: nn.Module, n_ctx: int, ctx_init: str = ""):
        super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init=ctx_init)
        vis_dim = clip_model.visual.output_dim
        ctx_dim = self.ctx.shape[-1]
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
        ])).to(clip_model.dtype)  # fp16 under PREC fp16, like the rest of the model (as the reference)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return super().forward(ctx_shift=self.meta_net(image_features))


class CoCoOpModel(PromptedCLIP):
    def __init__(self, clip_model: nn.Module, classnames: List[str], method_cfg: CN, text_batch_size: int = 0):
        super().__init__(clip_model, text_batch_size)
        self.prompt_learner = ConditionalPromptLearner(classnames, clip_model, method_cfg.N_CTX, method_cfg.CTX_INIT)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        image_features = F.normalize(self.encode_image(image), dim=-1)
        prompts = self.prompt_learner(image_features)  # (B, C, L, D)
        # every image's C prompts in one batched call (chunked by MODEL.TEXT_BATCH_SIZE when no gradient is needed)
        text_features = self.encode_text(prompts, self.prompt_learner.tokenized_prompts)
        return self.logits(image_features, F.normalize(text_features, dim=-1))


@TRAINER_REGISTRY.register()
class CoCoOp(CLIPTrainer):
    CFG_NODE = "COCOOP"
    MODEL_NAME = "prompt_learner"

    @classmethod
    def extend_cfg(cls, cfg: CN) -> None:
        cfg.TRAINER.COCOOP = CN()
        cfg.TRAINER.COCOOP.N_CTX = 16  # number of context vectors
        cfg.TRAINER.COCOOP.CTX_INIT = ""  # initialization words
        cfg.TRAINER.COCOOP.PREC = "fp16"  # fp16, fp32, amp

    def build_custom_clip(self, clip_model: nn.Module, classnames: List[str]) -> CoCoOpModel:
        return CoCoOpModel(clip_model, classnames, self.method_cfg, self.cfg.MODEL.TEXT_BATCH_SIZE)
