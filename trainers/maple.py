"""MaPLe (Khattak et al., CVPR 2023): multi-modal prompt learning. Learnable language prompts in the first
J layers of the text encoder; the vision prompts of the same layers are made from them by coupling functions
(Linear text width -> vision width), so both branches are prompted jointly."""
import copy
from typing import List, Optional

import torch
import torch.nn as nn
from torch.nn import functional as F
from yacs.config import CfgNode as CN

from promptlearn.engine import TRAINER_REGISTRY, CLIPTrainer
from promptlearn.errors import UserError
from promptlearn.modeling import PromptedCLIP, PromptLearner


class MultiModalPromptLearner(PromptLearner):
    """Language prompts for the first ``depth`` layers and the coupling functions that make the vision prompts.

    Layer 0: the context ``ctx`` (M tokens after SOT; MaPLe's init keeps N_CTX and learns the first words of
    CTX_INIT) sits in the prompts, and ``proj(ctx)`` is appended to the image tokens. Layer i in 1..depth-1:
    ``compound_prompts_text[i-1]`` replaces the M text context slots and its coupling
    ``compound_prompt_projections[i-1]`` replaces the last M image tokens. Deeper layers go on with whatever
    those slots hold. ``depth`` 1 is shallow prompting.

    Precision: the inserted prompts are in CLIP's dtype, so under PREC fp32 they stay fp32. The official code
    rounds every inserted prompt to fp16 (``.half()``) even then, which moves each value by up to half an fp16
    step (README, "Deliberate differences"); under fp16, the paper configs' precision, both are the same.
    """

    def __init__(self, classnames: List[str], clip_model: nn.Module, n_ctx: int, ctx_init: str, depth: int,
                 vision_width: int):
        super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init=ctx_init, honour_n_ctx=True)
        text_width = self.ctx.shape[-1]
        # The reference forces proj to fp16 whatever PREC is. Here it follows CLIP's dtype, so it stays fp32
        # under fp32 and amp (amp's gradient scaler refuses to unscale fp16 gradients).
        self.proj = nn.Linear(text_width, vision_width).to(clip_model.dtype)
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(torch.empty(self.n_ctx, text_width)) for _ in range(depth - 1)])
        for prompt in self.compound_prompts_text:
            nn.init.normal_(prompt, std=0.02)
        coupling = nn.Linear(text_width, vision_width)  # every layer's coupling starts from the same weights
        self.compound_prompt_projections = nn.ModuleList([copy.deepcopy(coupling) for _ in range(depth - 1)])

    def text_deep_prompts(self) -> List[Optional[torch.Tensor]]:
        """Per text layer, the prompts that replace the context slots at its input (none at layer 0)."""
        return [None, *self.compound_prompts_text]

    def vision_prompts(self) -> List[torch.Tensor]:
        """Per vision layer: entry 0 is appended to the image tokens, entry i >= 1 replaces the last M tokens."""
        deep = [coupling(prompt) for coupling, prompt in zip(self.compound_prompt_projections,
                                                             self.compound_prompts_text)]
        return [self.proj(self.ctx), *deep]


class MaPLeModel(PromptedCLIP):
    checkpoint_layout = "by_name"  # state-dict keys "prompt_learner.*", as in the official MaPLe checkpoints

    def __init__(self, clip_model: nn.Module, classnames: List[str], method_cfg: CN, text_batch_size: int = 0):
        super().__init__(clip_model, text_batch_size)
        self.image_encoder.require_vit("MaPLe")
        depth = method_cfg.PROMPT_DEPTH
        max_depth = min(self.text_encoder.num_layers, self.image_encoder.num_layers)
        if not 1 <= depth <= max_depth:
            raise UserError(f"TRAINER.MAPLE.PROMPT_DEPTH must be between 1 (shallow prompting) and {max_depth}, "
                            f"the number of layers of this backbone's encoders; got {depth}")
        self.prompt_learner = MultiModalPromptLearner(classnames, clip_model, method_cfg.N_CTX, method_cfg.CTX_INIT,
                                                      depth, self.image_encoder.width)

    def class_text_features(self) -> torch.Tensor:
        learner = self.prompt_learner
        text_features = self.encode_text(learner(), learner.tokenized_prompts, deep_prompts=learner.text_deep_prompts())
        return F.normalize(text_features, dim=-1)

    def image_embedding(self, image: torch.Tensor) -> torch.Tensor:
        """The image encoder's output with MaPLe's vision prompts."""
        return self.encode_image(image, visual_prompts=self.prompt_learner.vision_prompts())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.logits(self.image_embedding(image), self.text_features())


@TRAINER_REGISTRY.register()
class MaPLe(CLIPTrainer):
    CFG_NODE = "MAPLE"
    MODEL_NAME = "MultiModalPromptLearner"

    @classmethod
    def extend_cfg(cls, cfg: CN) -> None:
        cfg.TRAINER.MAPLE = CN()
        cfg.TRAINER.MAPLE.N_CTX = 2  # number of context vectors
        cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"  # initialization words
        cfg.TRAINER.MAPLE.PREC = "fp16"  # fp16, fp32, amp
        cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9  # layers with prompts (at most the encoders' depth); 1 = shallow MaPLe

    def build_custom_clip(self, clip_model: nn.Module, classnames: List[str]) -> MaPLeModel:
        return MaPLeModel(clip_model, classnames, self.method_cfg, self.cfg.MODEL.TEXT_BATCH_SIZE)

    def filter_loaded_state(self, name: str, state_dict: dict) -> dict:
        # official MaPLe checkpoints hold the whole model: only the prompt learner is taken from them
        state_dict = {k: v for k, v in state_dict.items() if k.startswith("prompt_learner.")}
        return super().filter_loaded_state(name, state_dict)
