"""``PromptedCLIP``: the frozen CLIP encoders plus a method's learnable parts, as one module.

A method subclasses it, adds its learnable modules and implements ``forward(image) -> logits``.
Methods whose class text features do not depend on the image (ZS-CLIP, CoOp, MaPLe) implement
``class_text_features()``; evaluation then encodes the classes once per evaluation, not once per batch.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoders import ImageEncoder, TextEncoder, class_prompt_prefix


class PromptedCLIP(nn.Module):
    #: names of the attributes holding the learnable modules: what the trainer optimizes and checkpoints
    learnable_names: tuple = ("prompt_learner",)
    #: how their parameters are keyed in a checkpoint: "flat", the one learnable module's own keys ("ctx", ...;
    #: CoOp's and CoCoOp's files), or "by_name", each key under its attribute's name ("prompt_learner.ctx";
    #: MaPLe's files). "flat" needs exactly one learnable module.
    checkpoint_layout: str = "flat"

    def __init__(self, clip_model: nn.Module, text_batch_size: int = 0):
        super().__init__()
        self.image_encoder = ImageEncoder(clip_model)
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype
        self.text_batch_size = text_batch_size
        self._cached_text_features: Optional[torch.Tensor] = None

    def learnable_module(self) -> Optional[nn.Module]:
        """The module registered with the trainer (optimized and checkpointed); None if nothing is learned."""
        modules = {name: getattr(self, name) for name in self.learnable_names if getattr(self, name, None) is not None}
        if not modules:
            return None
        if self.checkpoint_layout == "by_name":
            return nn.ModuleDict(modules)
        if self.checkpoint_layout != "flat":
            raise ValueError(f'{type(self).__name__}.checkpoint_layout must be "flat" or "by_name", '
                             f'got "{self.checkpoint_layout}"')
        if len(modules) > 1:
            raise ValueError(f"{type(self).__name__} learns {sorted(modules)}: a flat checkpoint holds one module; "
                             'set checkpoint_layout = "by_name"')
        return next(iter(modules.values()))

    def encode_image(self, image: torch.Tensor, **kwargs):
        return self.image_encoder(image, **kwargs)

    def image_embedding(self, image: torch.Tensor) -> torch.Tensor:
        """The image encoder's output (B, E): the image features the logits compare with the class text features.

        A method whose logits see other image features overrides it (GOPro's P_v, MaPLe's prompted encoder)."""
        return self.encode_image(image)

    def encode_text(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor, **kwargs) -> torch.Tensor:
        # the classes' prompts of one image share their first positions: encoded once (see TextEncoder)
        learner = getattr(self, "prompt_learner", None)
        kwargs.setdefault("shared_prefix", class_prompt_prefix(learner, tokenized_prompts))
        return self.text_encoder(prompts, tokenized_prompts, max_batch=self.text_batch_size, **kwargs)

    def class_text_features(self) -> torch.Tensor:
        """L2-normalized text features of every class (C, E), for image-independent prompts."""
        raise NotImplementedError

    @property
    def has_class_text_features(self) -> bool:
        return type(self).class_text_features is not PromptedCLIP.class_text_features

    def text_features(self) -> torch.Tensor:
        if self._cached_text_features is not None:
            return self._cached_text_features
        return self.class_text_features()

    def prepare_inference(self) -> None:
        """Encode the class prompts once for a whole evaluation (when they do not depend on the image)."""
        if self.has_class_text_features:
            self._cached_text_features = self.class_text_features()

    def clear_cache(self) -> None:
        self._cached_text_features = None

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Cosine similarity times CLIP's logit scale, in fp32. Text features (C, E) or per image (B, C, E)."""
        image_features = F.normalize(image_features.float(), dim=-1)
        text_features = text_features.float()
        scale = self.logit_scale.float().exp()
        if text_features.dim() == 3:
            return scale * torch.einsum("be,bce->bc", image_features, text_features)
        return scale * image_features @ text_features.t()
