"""Text encoder cost: what the text transformer runs for a batch of class prompts, one optimization at a time.

CoOp-style prompts (a learned context + class name + ".") of ImageNet's class names, encoded by ``TextEncoder``:

a0. attention: ``scaled_dot_product_attention`` with ``is_causal`` (ours) vs CLIP's own blocks, whose
    ``nn.MultiheadAttention`` takes the 77 x 77 float mask (the reference code); both over all 77 positions.
a1. truncation: every prompt cut after the longest EOT vs all 77 positions (the text transformer is causal:
    later positions cannot change the pooled EOT feature).
a2. length groups: prompts grouped by token length, each group cut after its own longest EOT, vs all cut
    after the longest (ImageNet's long names pad the others to twice their length).
a3. shared prefix: per-image prompts (GOPro's 4 images x 3 views, one shifted context each): SOT and the
    context once per image, the classes' own tokens attending to them, vs every prompt in full.

Each case runs inference and forward + backward to the prompts' inputs, after checking both paths equal
(features; gradients). ``tokens_table`` prints the positions processed against the tokens that matter
(each prompt up to its EOT) for Caltech101's and ImageNet's class names, before and after.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

import torch
from tabulate import tabulate

from benchmarks import reference
from benchmarks.class_names import CALTECH101, IMAGENET
from benchmarks.common import assert_same, build_clip, main, measure, resolve
from promptlearn.modeling import PromptLearner, TextEncoder, tokenize
from promptlearn.modeling.encoders import class_prompt_prefix, tokens_processed

N_CTX = 4  # "a photo of a", the context of CoCoOp's, MaPLe's and GOPro's configs
#: classes per device: ImageNet's 1000 on a GPU; its first 300 (of all lengths) on a CPU
CLASSES = {"cpu": 300, "cuda": 1000}
#: per-image prompts of case a3: GOPro's batch of 4 images x 3 views; classes per device
PER_IMAGE = 12
PER_IMAGE_CLASSES = {"cpu": 50, "cuda": 500}


def imagenet_names(count: int):
    """``count`` ImageNet class names spread over the whole list (its lengths vary along it)."""
    step = len(IMAGENET) / count
    return [IMAGENET[int(i * step)] for i in range(count)]


def tokens_table() -> str:
    rows = []
    for dataset, names in (("Caltech101", CALTECH101), ("ImageNet", IMAGENET)):
        tokenized = tokenize([f"a photo of a {name}." for name in names])
        needed = tokens_processed(tokenized, "needed", images=PER_IMAGE)
        ratios = [tokens_processed(tokenized, mode, images=PER_IMAGE) / needed for mode in ("full", "longest",
                                                                                             "grouped")]
        shared = tokens_processed(tokenized, "grouped", images=PER_IMAGE, shared_prefix=1 + N_CTX) / needed
        rows.append([dataset, len(names), needed // PER_IMAGE, *(f"{r:.3f}" for r in (*ratios, shared))])
    headers = ["classes", "C", "tokens that matter (per image)", "77 tokens", "cut at longest EOT (before)",
               "length groups", "groups + shared prefix"]
    return ("tokens processed / tokens that matter (\"a photo of a {}.\", GOPro's 12 prompts per class)\n"
            + tabulate(rows, headers=headers, disable_numparse=True))


def _check_and_measure(case: str, detail: str, naive, optimized, leaf, device, precision, repeats):
    """Inference and forward + backward of ``naive(leaf)`` vs ``optimized(leaf)``, checked equal first."""
    def infer(fn):
        with torch.inference_mode():
            return fn(leaf)

    def step(fn):
        leaf.grad = None
        fn(leaf).float().square().sum().backward()
        return leaf.grad.clone()

    assert_same(infer(naive), infer(optimized), precision, f"{case}: features")
    assert_same(step(naive), step(optimized), precision, f"{case}: gradients")
    return [measure(f"{case}, inference", detail, lambda: infer(naive), lambda: infer(optimized), device, repeats),
            measure(f"{case}, forward+backward", detail, lambda: step(naive), lambda: step(optimized), device,
                    repeats)]


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5, classes: int = 0):
    device, backbone, precision = resolve(device, backbone, precision)
    clip_model = build_clip(backbone, device, precision)
    encoder = TextEncoder(clip_model)
    results = []

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        learner = PromptLearner(imagenet_names(classes or CLASSES[device.type]), clip_model, n_ctx=N_CTX,
                                ctx_init="a photo of a").to(device)
    full = reference.FullLengthPrompts(learner, clip_model)
    tokenized, ids77 = learner.tokenized_prompts, full.tokenized
    longest = tokenized.shape[1]
    ctx = learner.ctx.detach().clone().requires_grad_(True)
    count = tokenized.shape[0]

    results += _check_and_measure(
        "a0. attention: SDPA is_causal vs nn.MultiheadAttention + 77x77 mask", f"{count} prompts, 77 tokens",
        lambda c: reference.text_features(clip_model, full(c), ids77),
        lambda c: encoder(full(c), ids77, truncate=False), ctx, device, precision, repeats)
    results += _check_and_measure(
        "a1. truncated at the longest EOT vs 77 tokens", f"{count} prompts, {longest} of 77 tokens",
        lambda c: encoder(full(c), ids77, truncate=False),
        lambda c: encoder(learner.assemble(c), tokenized, group_by_length=False, shared_prefix=0), ctx, device,
        precision, repeats)
    needed = tokens_processed(tokenized, "needed")
    grouped = tokens_processed(tokenized, "grouped")
    results += _check_and_measure(
        "a2. length groups vs cut at the longest EOT",
        f"{count} prompts: {count * longest} -> {grouped} positions ({needed} matter)",
        lambda c: encoder(learner.assemble(c), tokenized, group_by_length=False, shared_prefix=0),
        lambda c: encoder(learner.assemble(c), tokenized, shared_prefix=0), ctx, device, precision, repeats)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        per_image_classes = max(2, classes // 4) if classes else PER_IMAGE_CLASSES[device.type]
        learner = PromptLearner(imagenet_names(per_image_classes), clip_model, n_ctx=N_CTX,
                                ctx_init="a photo of a").to(device)
        shift = (0.02 * torch.randn(PER_IMAGE, learner.ctx.shape[-1])).to(device, learner.ctx.dtype)
    prefix = class_prompt_prefix(learner, learner.tokenized_prompts)
    shift.requires_grad_(True)
    tokenized = learner.tokenized_prompts
    detail = (f"{PER_IMAGE} x {tokenized.shape[0]} prompts: {tokens_processed(tokenized, 'grouped', PER_IMAGE)} -> "
              f"{tokens_processed(tokenized, 'grouped', PER_IMAGE, prefix)} positions")
    results += _check_and_measure(
        "a3. shared prefix (SOT + context once per image) vs length groups", detail,
        lambda s: encoder(learner(s), tokenized, shared_prefix=0),
        lambda s: encoder(learner(s), tokenized, shared_prefix=prefix), shift, device, precision, repeats)
    return results


def add_arguments(parser) -> None:
    parser.add_argument("--classes", type=int, default=0,
                        help=f"prompts of cases a0-a2 (default {CLASSES}); a3 takes a quarter of them per image")


if __name__ == "__main__":
    print(tokens_table())
    main(run, __doc__.split("\n")[0], add_arguments=add_arguments)
