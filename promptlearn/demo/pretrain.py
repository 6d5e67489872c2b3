"""Pre-train mini-ViT: OpenAI's CLIP at toy size, trained with CLIP's symmetric contrastive loss on the
generated corpus (corpus.py), written as an OpenAI-format state dict that ``load_clip`` reads like real
weights.

    python -m promptlearn.demo.pretrain [--out FILE]

Deterministic: the corpus, the initialization and the batches come from fixed seeds, and the training runs
on one CPU thread (float sums depend on how the work is split between threads, so the thread count is part
of the recipe; one thread is also the fastest on a busy machine). Bitwise the same file for the same torch
version and CPU kind. Written atomically.
"""
import argparse
import logging
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from ..modeling.backbones import BACKBONES, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from ..modeling.clip_compat import clip
from ..utils.tools import atomic_write
from .corpus import make_corpus

logger = logging.getLogger(__name__)

BACKBONE = "mini-ViT"


class Settings:
    seed = 0
    images = 24000
    captions_per_image = 3
    steps = 1000
    batch_size = 256
    lr = 2e-3
    weight_decay = 0.1
    warmup = 0.1


def _to_tensor(images) -> torch.Tensor:
    data = torch.stack([torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(32, 32, 3)
                        for img in images])
    return data.permute(0, 3, 1, 2).contiguous()


def normalize(batch: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_PIXEL_STD).view(1, 3, 1, 1)
    return (batch.float() / 255 - mean) / std


def pretrain(settings=Settings, architecture: dict = None, log_every: int = 100) -> torch.nn.Module:
    """The trained CLIP (``architecture``: clip.model.CLIP's arguments, by default mini-ViT's), converted to
    fp16 as ``build_model`` leaves a checkpoint. Runs on one thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _pretrain(settings, architecture, log_every)
    finally:
        torch.set_num_threads(threads)


def _pretrain(settings, architecture, log_every) -> torch.nn.Module:
    from ..modeling.encoders import ImageEncoder, TextEncoder

    start = time.time()
    images, captions, truths = make_corpus(settings.images, settings.seed, settings.captions_per_image)
    pixels = _to_tensor(images)
    unique = sorted({text for texts in captions for text, _ in texts})
    index = {text: i for i, text in enumerate(unique)}
    caption_ids = torch.tensor([[index[text] for text, _ in texts] for texts in captions])
    vocabulary = sorted(set().union(*truths))
    column = {fact: i for i, fact in enumerate(vocabulary)}
    image_facts = torch.zeros(len(images), len(vocabulary))
    for i, true in enumerate(truths):
        image_facts[i, [column[f] for f in true]] = 1
    caption_facts = torch.zeros(len(unique), len(vocabulary))
    for texts in captions:
        for text, named in texts:
            caption_facts[index[text], [column[f] for f in named]] = 1
    tokens = clip.tokenize(unique).long()
    tokens = tokens[:, :int(tokens.argmax(dim=-1).max()) + 1]
    logger.info(f"Corpus: {len(images)} images, {len(unique)} distinct captions, {len(vocabulary)} facts "
                f"({time.time() - start:.0f} s)")

    torch.manual_seed(settings.seed)
    model = clip.model.CLIP(**(architecture or BACKBONES[BACKBONE].clip_args))
    image_encoder, text_encoder = ImageEncoder(model), TextEncoder(model)
    # Only the corpus's few hundred tokens are trained: a compact copy of their rows of the 49,408-token
    # embedding (the optimizer would otherwise update all of it every step), written back at the end.
    used = torch.unique(tokens)
    compact_ids = torch.zeros(model.vocab_size, dtype=torch.long)
    compact_ids[used] = torch.arange(len(used))
    compact = torch.nn.Parameter(model.token_embedding.weight.detach()[used].clone())
    model.token_embedding.requires_grad_(False)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if p.dim() >= 2 and "embedding" not in n]
    other = [p for n, p in params if not (p.dim() >= 2 and "embedding" not in n)] + [compact]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=settings.lr, betas=(0.9, 0.98))
    warmup = int(settings.steps * settings.warmup)

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (settings.steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(settings.seed)
    model.train()
    for step in range(settings.steps):
        idx = torch.randint(len(pixels), (settings.batch_size,), generator=generator)
        which = torch.randint(settings.captions_per_image, (settings.batch_size,), generator=generator)
        ids = caption_ids[idx, which]
        image_features = F.normalize(image_encoder(normalize(pixels[idx])), dim=-1)
        text = tokens[ids]
        text_features = F.normalize(text_encoder(compact[compact_ids[text]], text), dim=-1)
        logits = model.logit_scale.exp() * image_features @ text_features.t()
        # every caption of the batch that is true of an image (it names nothing the image lacks) is a positive
        true = (caption_facts[ids] @ (1 - image_facts[idx]).t() == 0).t().float()  # (images, captions)
        loss = (F.cross_entropy(logits, true / true.sum(1, keepdim=True))
                + F.cross_entropy(logits.t(), true.t() / true.t().sum(1, keepdim=True))) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if log_every and (step + 1) % log_every == 0:
            logger.info(f"step {step + 1}/{settings.steps} loss {loss.item():.3f} "
                        f"scale {model.logit_scale.exp().item():.1f} ({time.time() - start:.0f} s, "
                        f"cpu {time.process_time():.0f} s)")
    with torch.no_grad():
        model.token_embedding.weight[used] = compact
    model.eval()
    clip.model.convert_weights(model)
    return model


def save(model: torch.nn.Module, path: str) -> None:
    """OpenAI's state-dict form, every tensor as ``build_model`` leaves it (token embedding in fp16, as in
    the released files: half the size, and ``build_model`` loads it into its fp32 parameter unchanged)."""
    state = {key: value.half() if key == "token_embedding.weight" else value
             for key, value in model.state_dict().items()}
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def main(argv=None) -> int:
    spec = BACKBONES[BACKBONE]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(spec.shipped_dir, spec.file), help="weights file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    model = pretrain()
    save(model, args.out)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
