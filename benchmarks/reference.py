"""What the official trainers compute in a training step and an evaluation batch, at the official cost.

The reference-cost paths of the whole-step benchmark: they run on the learnable modules of our models
(so that the two paths can be checked equal where the math is the same) but do the work the way the
official CoOp, CoCoOp, MaPLe and GOPro code does it:

- text: every prompt is 77 tokens long (the prefix/suffix buffers are never cut), run sequence-first
  through CLIP's own ``ResidualAttentionBlock`` (``nn.MultiheadAttention`` with the 77 x 77 float mask);
  GOPro's modified transformer also stacks a detached copy of every layer's output on each call;
- per-image prompts (CoCoOp, GOPro): one text-encoder call per image, in a Python loop;
- images: CLIP's own vision blocks; GOPro's taps are stacked into one (layers, B, T, W) tensor;
- GOPro's views: in the training step, each image of the normalized device batch goes device -> CPU ->
  PIL -> transform -> device; AugMix makes B views of every image and keeps those of image 0 (B^2 calls,
  bug B4); at test time all three views, their prompts and the projector outputs are computed and only
  the original view's logits are used (B5).
"""
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.transforms.functional import to_pil_image

from promptlearn.modeling import tokenize
from promptlearn.modeling.losses import simclr_loss
from promptlearn.modeling.prompts import embed_tokens


class FullLengthPrompts:
    """A prompt learner's prompts at CLIP's 77 positions, as the official learners build them (class token at
    the end): SOT, the context, then the class name, ".", EOT and padding from 77-token buffers."""

    def __init__(self, learner: nn.Module, clip_model: nn.Module):
        self.learner = learner
        self.tokenized = tokenize([f"{learner.prompt_prefix} {name}." for name in learner.classnames])
        self.tokenized = self.tokenized.to(learner.ctx.device)
        embedding = embed_tokens(clip_model, self.tokenized)
        self.prefix = embedding[:, :1]
        self.suffix = embedding[:, 1 + learner.n_ctx:]

    def __call__(self, ctx: torch.Tensor) -> torch.Tensor:
        """Context (M, D) shared by the classes -> prompts (C, 77, D)."""
        ctx = ctx.type(self.prefix.dtype).unsqueeze(0).expand(self.prefix.shape[0], -1, -1)
        return torch.cat([self.prefix, ctx, self.suffix], dim=1)


def text_features(clip_model: nn.Module, prompts: torch.Tensor, tokenized: torch.Tensor,
                  deep_prompts: Optional[Sequence[Optional[torch.Tensor]]] = None,
                  record_layers: bool = False) -> torch.Tensor:
    """CoOp's ``TextEncoder`` (with MaPLe's deep prompts, GOPro's recorded layers): (C, 77, D) -> (C, E)."""
    dtype = clip_model.dtype
    x = (prompts + clip_model.positional_embedding.type(dtype)).permute(1, 0, 2)
    records = []
    for i, block in enumerate(clip_model.transformer.resblocks):
        if deep_prompts is not None and 0 < i < len(deep_prompts) and deep_prompts[i] is not None:
            prompt = deep_prompts[i].type(dtype).unsqueeze(1).expand(-1, x.shape[1], -1)
            x = torch.cat([x[:1], prompt, x[1 + prompt.shape[0]:]], dim=0)
        x = block(x)
        if record_layers:
            records.append(x.detach().permute(1, 0, 2))
    if record_layers:
        torch.stack(records)  # what GOPro's transformer returns beside x; its text encoder drops it
    x = clip_model.ln_final(x.permute(1, 0, 2)).type(dtype)
    return x[torch.arange(x.shape[0]), tokenized.argmax(dim=-1)] @ clip_model.text_projection


def image_features(clip_model: nn.Module, images: torch.Tensor, record_layers: bool = False,
                   visual_prompts: Optional[Sequence[Optional[torch.Tensor]]] = None):
    """CLIP's ``VisionTransformer.forward`` (with MaPLe's visual prompts, GOPro's stacked taps)."""
    visual = clip_model.visual
    dtype = clip_model.dtype
    x = visual.conv1(images.type(dtype))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=dtype, device=x.device)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(dtype)
    if visual_prompts is not None:
        x = torch.cat([x, visual_prompts[0].type(dtype).expand(x.shape[0], -1, -1)], dim=1)
    x = visual.ln_pre(x).permute(1, 0, 2)
    records = []
    for i, block in enumerate(visual.transformer.resblocks):
        if visual_prompts is not None and 0 < i < len(visual_prompts) and visual_prompts[i] is not None:
            prompt = visual_prompts[i].type(dtype).unsqueeze(1).expand(-1, x.shape[1], -1)
            x = torch.cat([x[: x.shape[0] - prompt.shape[0]], prompt], dim=0)
        x = block(x)
        if record_layers:
            records.append(x.detach().permute(1, 0, 2))
    features = visual.ln_post(x.permute(1, 0, 2)[:, 0]) @ visual.proj
    return (features, torch.stack(records)) if record_layers else features


def logits(model: nn.Module, image_features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    return model.logit_scale.exp() * F.normalize(image_features, dim=-1) @ F.normalize(text, dim=-1).t()


# ----------------------------------------------------------------------------------------- the methods

def coop_logits(model, clip_model, prompts: FullLengthPrompts, images: torch.Tensor) -> torch.Tensor:
    text = text_features(clip_model, prompts(model.prompt_learner.ctx), prompts.tokenized)
    return logits(model, clip_model.encode_image(images.type(clip_model.dtype)), text).float()


def cocoop_logits(model, clip_model, prompts: FullLengthPrompts, images: torch.Tensor) -> torch.Tensor:
    learner = model.prompt_learner
    features = F.normalize(clip_model.encode_image(images.type(clip_model.dtype)), dim=-1)
    shifts = learner.meta_net(features)
    rows = []
    for feature, shift in zip(features, shifts):
        text = text_features(clip_model, prompts(learner.ctx + shift), prompts.tokenized)
        rows.append(logits(model, feature[None], text))
    return torch.cat(rows).float()


def maple_logits(model, clip_model, prompts: FullLengthPrompts, images: torch.Tensor) -> torch.Tensor:
    learner = model.prompt_learner
    text = text_features(clip_model, prompts(learner.ctx), prompts.tokenized, learner.text_deep_prompts())
    features = image_features(clip_model, images, visual_prompts=learner.vision_prompts())
    return logits(model, features, text).float()


class GOProReference:
    """The official GOPro ``CustomCLIP.forward`` on a GOProModel's learnable modules (the official structure:
    one generator shared by the views, P_v only in L_con) and its training loss."""

    def __init__(self, model, clip_model, make_moco: Callable, make_augmix: Callable, weights=(1.0, 1.0, 0.1),
                 temperature: float = 0.1):
        self.model, self.clip_model = model, clip_model
        self.prompts = FullLengthPrompts(model.prompt_learner, clip_model)
        self.make_moco, self.make_augmix = make_moco, make_augmix
        self.weights, self.temperature = weights, temperature

    def round_trip_views(self, images: torch.Tensor):
        """MoCo v3 view per image and AugMix's B views of every image, of which image 0's are kept."""
        device = images.device
        moco = torch.stack([self.make_moco(to_pil_image(image.float().cpu())) for image in images])
        augmix = None
        for image in images:
            pil = to_pil_image(image.float().cpu())
            views = torch.stack([self.make_augmix(pil) for _ in range(images.shape[0])])
            augmix = views if augmix is None else augmix
        return moco.to(device, images.dtype), augmix.to(device, images.dtype)

    def view_text(self, taps: torch.Tensor) -> torch.Tensor:
        """(B, C, E) normalized text features of every image's prompts, one text-encoder call per image."""
        learner = self.model.prompt_learner
        shifts = self.model.generator("orig")(list(taps))
        return torch.stack([F.normalize(text_features(self.clip_model, self.prompts(learner.ctx + shift),
                                                      self.prompts.tokenized, record_layers=True), dim=-1)
                            for shift in shifts])

    def forward(self, images: torch.Tensor, views=None):
        """(logits, T0, T1, T2, z0, z1); ``views`` (MoCo, AugMix) given, or made by the round trip."""
        moco, augmix = self.round_trip_views(images) if views is None else views
        encoded = [image_features(self.clip_model, x, record_layers=True) for x in (images, moco, augmix)]
        text = [self.view_text(taps) for _, taps in encoded]
        f0 = F.normalize(encoded[0][0].float(), dim=-1)
        out_logits = self.model.logit_scale.exp() * torch.einsum("be,bce->bc", f0, text[0].float())
        z0, z1 = self.model.simproj(encoded[0][0]), self.model.simproj(encoded[1][0])
        return out_logits, text[0], text[1], text[2], z0, z1

    def loss(self, images: torch.Tensor, label: torch.Tensor, views=None) -> torch.Tensor:
        out_logits, t0, t1, t2, z0, z1 = self.forward(images, views)
        w_ce, w_sem, w_con = self.weights
        sem = F.mse_loss(t0.float(), t1.float()) + F.mse_loss(t0.float(), t2.float())
        return (w_ce * F.cross_entropy(out_logits, label) + w_sem * sem
                + w_con * simclr_loss(z0, z1, self.temperature))


def step(loss_fn: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """One training step as the official trainers take it: zero_grad, backward, optimizer step."""
    loss = loss_fn()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def parameters_of(modules: List[nn.Module]) -> List[nn.Parameter]:
    return [p for module in modules for p in module.parameters() if p.requires_grad]
