"""Text encoder: sequences cut after the longest EOT vs the full 77-token context.

CoOp-style prompts ("X" x 16 context tokens + class name + ".") for C classes, encoded by ``TextEncoder``
with ``truncate=True`` (what every trainer does) and ``truncate=False`` (the reference code). The text
transformer is causal, so the pooled EOT features are the same; the check runs before the timing.
Two cases: inference (evaluation, CoOp's class features) and forward + backward to the prompt
embeddings (a training step of a text-prompt method).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from benchmarks.common import assert_same, build_clip, classnames, main, measure, resolve
from promptlearn.modeling import TextEncoder, tokenize
from promptlearn.modeling.prompts import embed_tokens

N_CTX = 16  # CoOp's default number of context tokens
#: classes per device: ImageNet's 1000 on a GPU; fewer on a CPU, with the tiny backbone
CLASSES = {"cpu": 100, "cuda": 1000}
TRAIN_CLASSES = {"cpu": 50, "cuda": 500}  # base classes of ImageNet in base-to-new training


def _prompts(clip_model, count: int, device):
    tokenized = tokenize([" ".join(["X"] * N_CTX) + f" {name}." for name in classnames(count)]).to(device)
    return embed_tokens(clip_model, tokenized), tokenized


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5):
    device, backbone, precision = resolve(device, backbone, precision)
    clip_model = build_clip(backbone, device, precision)
    encoder = TextEncoder(clip_model)
    results = []

    prompts, tokenized = _prompts(clip_model, CLASSES[device.type], device)
    length = int(tokenized.argmax(-1).max()) + 1

    def encode(truncate: bool):
        with torch.inference_mode():
            return encoder(prompts, tokenized, truncate=truncate)

    assert_same(encode(False), encode(True), precision, "truncated text encoder")
    detail = f"{prompts.shape[0]} prompts, {length} of 77 tokens"
    results.append(measure("a. text encoder, inference: truncated vs 77 tokens", detail,
                           lambda: encode(False), lambda: encode(True), device, repeats))

    prompts, tokenized = _prompts(clip_model, TRAIN_CLASSES[device.type], device)
    length = int(tokenized.argmax(-1).max()) + 1
    leaf = prompts.detach().requires_grad_(True)

    def step(truncate: bool):
        leaf.grad = None
        encoder(leaf, tokenized, truncate=truncate).float().square().sum().backward()
        return leaf.grad

    assert_same(step(False), step(True), precision, "gradient through the truncated text encoder")
    detail = f"{prompts.shape[0]} prompts, {length} of 77 tokens"
    results.append(measure("a. text encoder, forward+backward: truncated vs 77 tokens", detail,
                           lambda: step(False), lambda: step(True), device, repeats))
    return results


if __name__ == "__main__":
    main(run, __doc__.split("\n")[0])
