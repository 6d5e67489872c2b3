"""A tiny CLIP pre-trained in-process on generated shape images with captions (``tiny-ViT-shapes``).

Random tiny backbones prove that code paths run; they have no image-text alignment, so accuracies are at
chance. The demo needs what real CLIP brings to prompt learning: zero-shot alignment on every class,
including the "new" ones a prompt is never trained on. This module gives that at toy scale: the tiny ViT
is trained with CLIP's contrastive loss on captions such as "a photo of a red star." for all ten shape
classes (images drawn with another seed than the demo dataset's), once, deterministically, in about half
a minute on two CPU cores. The result is cached as a state dict (fp16 weights, like OpenAI's) under
``$PROMPTLEARN_CACHE`` (default ``~/.cache/promptlearn``).
"""
import logging
import os
import random

import torch
import torch.nn.functional as F
from torchvision.transforms import Compose, Normalize, RandomResizedCrop, ToTensor

from ..utils.tools import atomic_write
from .backbones import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from .clip_compat import clip
from .encoders import ImageEncoder, TextEncoder

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
TEMPLATES = ["a photo of a {colour} {shape}.", "a photo of a {shape}.", "a {colour} {shape}.",
             "a {shape}.", "a drawing of a {shape}."]


def cache_path(name: str) -> str:
    root = os.path.expanduser(os.environ.get("PROMPTLEARN_CACHE", "~/.cache/promptlearn"))
    return os.path.join(root, f"{name.replace('/', '-')}-v{CACHE_VERSION}.pt")


def _make_pairs(resolution: int, per_class: int, views: int, seed: int):
    from ..tools.make_demo_data import CLASSNAMES, COLOURS, render

    rng = random.Random(seed)
    crop = Compose([RandomResizedCrop(resolution, scale=(0.5, 1.0)), ToTensor(),
                    Normalize(CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)])
    images, captions = [], []
    for shape in CLASSNAMES:
        for _ in range(per_class):
            colour = rng.choice(list(COLOURS))
            img = render(shape, rng, size=64, colour=colour)
            for _ in range(views):
                images.append(crop(img))
                captions.append(rng.choice(TEMPLATES).format(colour=colour, shape=shape))
    return torch.stack(images), captions


def pretrain_tiny_clip(model: torch.nn.Module, resolution: int, seed: int = 0, steps: int = 250,
                       batch_size: int = 128, per_class: int = 120, views: int = 2,
                       lr: float = 2e-3) -> torch.nn.Module:
    """Train ``model`` (fp32, in place) with the symmetric CLIP loss; captions that repeat in a batch
    count as positives of each other."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        images, captions = _make_pairs(resolution, per_class, views, seed)
        unique = sorted(set(captions))
        caption_ids = torch.tensor([unique.index(c) for c in captions])
        tokens = clip.tokenize(unique)
        image_encoder, text_encoder = ImageEncoder(model), TextEncoder(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
        model.train()
        for _ in range(steps):
            idx = torch.randint(len(images), (batch_size,))
            ids = caption_ids[idx]
            image_features = F.normalize(image_encoder(images[idx]), dim=-1)
            text_features = F.normalize(text_encoder(model.token_embedding(tokens[ids]), tokens[ids]), dim=-1)
            logits = model.logit_scale.exp() * image_features @ text_features.t()
            target = (ids[:, None] == ids[None, :]).float()
            target = target / target.sum(dim=1, keepdim=True)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
    logger.info(f"Pre-training finished (last batch loss {loss.item():.3f})")
    return model


def load_or_pretrain(name: str, build_model, resolution: int, seed: int) -> torch.nn.Module:
    """The cached pre-trained tiny CLIP ``name``; trained and cached on first use."""
    path = cache_path(name)
    model = build_model()
    if os.path.exists(path):
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model
        except (RuntimeError, EOFError, OSError) as err:
            logger.warning(f"WARNING: cached {path} is unreadable ({err}); pre-training again")
    logger.info(f"Pre-training {name} on generated shape captions (once; cached at {path})")
    model.float()
    pretrain_tiny_clip(model, resolution, seed=seed)
    clip.model.convert_weights(model)
    with atomic_write(path, "wb") as f:
        torch.save(model.state_dict(), f)
    return model
