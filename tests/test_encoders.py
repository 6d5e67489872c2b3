"""The shared encoders against OpenAI's unmodified CLIP on tiny backbones: TextEncoder equals
``encode_text`` and ImageEncoder equals ``encode_image`` (their last layers run for the pooled token only);
sequence truncation after the longest EOT does not change the text features (several prompt lengths, class
token at the end, middle and front); the per-layer token taps match the model's own residual blocks; ResNet
backbones refuse taps. Prompts grouped by length equal the padded batch (values and gradients, deep
prompts too) and cost close to the tokens that matter for Caltech101's and ImageNet's class names;
chunks recomputed in backward equal the whole pass and keep only their inputs."""
import itertools
import random

import pytest
import torch

from benchmarks.memory import saved_bytes
from promptlearn.errors import UserError
from promptlearn.modeling import ImageEncoder, PromptLearner, TextEncoder, encoders, load_clip, tokenize
from promptlearn.modeling.encoders import (
    LENGTH_SLACK,
    call_overhead_tokens,
    class_prompt_prefix,
    length_groups,
    tokens_processed,
)
from promptlearn.modeling.prompts import embed_tokens

TOL = dict(rtol=1e-5, atol=1e-5)

CLASSNAMES = ["cat", "golden_retriever", "a very long class name made of many different words", "x",
              "sea anemone", "black-footed ferret"]


@pytest.fixture(scope="module")
def clips():
    return {name: load_clip(name).float() for name in ("tiny-ViT", "tiny-ViT-L", "tiny-RN")}


def test_backbones_are_openai_clip_with_fp16_weights():
    model = load_clip("tiny-ViT")
    assert type(model).__module__ == "clip.model" and type(model).__name__ == "CLIP"
    assert model.dtype == torch.float16 and model.visual.conv1.weight.dtype == torch.float16
    assert model.token_embedding.weight.dtype == torch.float32  # CLIP keeps embeddings in fp32
    assert not model.training
    # seeded: two builds are identical
    assert torch.equal(load_clip("tiny-ViT").text_projection, model.text_projection)


@pytest.mark.parametrize("name", ["tiny-ViT", "tiny-ViT-L"])
def test_text_encoder_equals_encode_text(clips, name):
    model = clips[name]
    texts = [f"a photo of a {c.replace('_', ' ')}." for c in CLASSNAMES] + ["", "a " * 60]
    tokens = tokenize(texts)
    encoder = TextEncoder(model)
    with torch.no_grad():
        expected = model.encode_text(tokens)
        for truncate in (True, False):
            got = encoder(embed_tokens(model, tokens), tokens, truncate=truncate)
            torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.parametrize("name", ["tiny-ViT", "tiny-ViT-L", "tiny-RN"])
def test_image_encoder_equals_encode_image(clips, name):
    model = clips[name]
    res = model.visual.input_resolution
    images = torch.randn(3, 3, res, res, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ImageEncoder(model)(images), model.encode_image(images), **TOL)


def pad_to_full_length(model, prompts, tokenized):
    """The same prompts and ids continued to CLIP's 77 positions with the embedding of padding id 0."""
    n, length = tokenized.shape
    full_ids = torch.zeros(n, 77, dtype=tokenized.dtype)
    full_ids[:, :length] = tokenized
    full = embed_tokens(model, full_ids).clone()
    full[:, :length] = prompts
    return full, full_ids


@pytest.mark.parametrize("position", ["end", "middle", "front"])
@pytest.mark.parametrize(("classnames", "n_ctx"), [(["cat"], 1), (CLASSNAMES[:3], 4), (CLASSNAMES, 16)])
def test_truncation_is_exact_for_prompt_learner_prompts(clips, position, classnames, n_ctx):
    model = clips["tiny-ViT"]
    torch.manual_seed(n_ctx)
    learner = PromptLearner(classnames, model, n_ctx=n_ctx, class_token_position=position)
    encoder = TextEncoder(model)
    with torch.no_grad():
        prompts = learner()
        tokenized = learner.tokenized_prompts
        assert tokenized.shape[1] == int(tokenized.argmax(-1).max()) + 1 < 77  # already cut after the longest EOT
        full, full_ids = pad_to_full_length(model, prompts, tokenized)
        reference = encoder(full, full_ids, truncate=False)
        torch.testing.assert_close(encoder(prompts, tokenized, truncate=True), reference, **TOL)
        torch.testing.assert_close(encoder(full, full_ids, truncate=True), reference, **TOL)
        # padding content after EOT is irrelevant, as the causal mask promises
        noisy = full.clone()
        noisy[:, tokenized.shape[1]:] = torch.randn_like(noisy[:, tokenized.shape[1]:])
        torch.testing.assert_close(encoder(noisy, full_ids, truncate=False), reference, **TOL)


def test_batched_prompts_and_chunking(clips):
    model = clips["tiny-ViT"]
    learner = PromptLearner(CLASSNAMES, model, n_ctx=4)
    encoder = TextEncoder(model)
    shift = torch.randn(3, learner.ctx.shape[-1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        per_image = learner(shift)  # (B, C, L, D)
        assert per_image.shape[:2] == (3, len(CLASSNAMES))
        batched = encoder(per_image, learner.tokenized_prompts)
        assert batched.shape == (3, len(CLASSNAMES), encoder.output_dim)
        for b in range(3):
            torch.testing.assert_close(batched[b], encoder(per_image[b], learner.tokenized_prompts), **TOL)
        chunked = encoder(per_image, learner.tokenized_prompts, max_batch=4)
        torch.testing.assert_close(chunked, batched, **TOL)


@pytest.mark.parametrize("name", ["tiny-ViT", "tiny-ViT-L"])
def test_token_taps_match_the_residual_blocks(clips, name):
    model = clips[name]
    visual = model.visual
    res = visual.input_resolution
    images = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(2))
    encoder = ImageEncoder(model)
    block_outputs = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: block_outputs.append(out.permute(1, 0, 2)))
             for block in visual.transformer.resblocks]
    try:
        with torch.no_grad():
            features, taps = encoder(images, return_tokens=True)
            expected = model.encode_image(images)
    finally:
        for hook in hooks:
            hook.remove()
    n_layers = len(visual.transformer.resblocks)
    n_tokens = (res // visual.conv1.kernel_size[0]) ** 2 + 1
    width = visual.conv1.out_channels
    assert encoder.num_layers == len(taps) == n_layers
    assert encoder.num_tokens == n_tokens and encoder.width == width
    assert all(tap.shape == (2, n_tokens, width) for tap in taps)
    torch.testing.assert_close(features, expected, **TOL)
    for tap, block_out in zip(taps, block_outputs):
        torch.testing.assert_close(tap, block_out, **TOL)
    # the features are ln_post of the last tap's class token, projected
    torch.testing.assert_close(visual.ln_post(taps[-1][:, 0]) @ visual.proj, features, **TOL)


def test_resnet_refuses_taps_and_visual_prompts(clips):
    model = clips["tiny-RN"]
    encoder = ImageEncoder(model)
    images = torch.randn(1, 3, 32, 32)
    assert not encoder.is_vit
    with pytest.raises(UserError, match="ViT"):
        encoder(images, return_tokens=True)
    with pytest.raises(UserError, match="ViT"):
        encoder(images, visual_prompts=[torch.zeros(2, 16)])


# ------------------------------------------------------------------------------ length groups, recomputation

def brute_force_groups(length_counts, slack):
    """Fewest contiguous groups within the bound, by trying every partition (for a handful of lengths)."""
    lengths = [length for length, _ in length_counts]
    needed = sum(length * count for length, count in length_counts)
    best = None
    for cuts in itertools.product([False, True], repeat=len(lengths) - 1):
        ends = [lengths[i] for i, cut in enumerate(cuts) if cut] + [lengths[-1]]
        cost = sum(count * min(end for end in ends if end >= length) for length, count in length_counts)
        if cost <= (1 + slack) * needed and (best is None or len(ends) < len(best[0])
                                              or (len(ends) == len(best[0]) and cost < best[1])):
            best = (tuple(ends), cost)
    return best


@pytest.fixture
def no_call_overhead(monkeypatch):
    """Group and share however few tokens it saves (the tiny encoder's passes cost more than its tokens)."""
    monkeypatch.setattr(encoders, "CALL_OVERHEAD_FLOPS", {"cpu": 0})


def test_length_groups_are_the_fewest_within_the_bound():
    # 10 prompts of 5 tokens, 10 of 6 and one of 20: padding all to 20 costs 420 tokens for 130 that matter
    assert length_groups(((5, 10), (6, 10), (20, 1)), slack=0.1) == (6, 20)
    assert length_groups(((5, 10), (6, 10), (20, 1)), slack=3.0) == (20,)
    assert length_groups(((7, 3),), slack=0.0) == (7,)
    rng = random.Random(0)
    for _ in range(30):
        lengths = sorted(rng.sample(range(3, 40), rng.randint(2, 6)))
        length_counts = tuple((length, rng.randint(1, 50)) for length in lengths)
        slack = rng.choice([0.0, 0.05, 0.1, 0.3])
        ends = length_groups(length_counts, slack)
        expected, cost = brute_force_groups(length_counts, slack)
        assert len(ends) == len(expected)
        assert sum(c * min(e for e in ends if e >= length) for length, c in length_counts) == cost
    # a further group must save more tokens than one more call costs
    assert length_groups(((5, 10), (6, 10), (20, 1)), slack=0.1, overhead=279) == (6, 20)  # 420 -> 140 tokens
    assert length_groups(((5, 10), (6, 10), (20, 1)), slack=0.1, overhead=280) == (20,)


def test_imagenet_and_caltech_prompts_cost_close_to_the_tokens_that_matter():
    from benchmarks.class_names import CALTECH101, IMAGENET

    for names, longest_over_needed in ((CALTECH101, 1.18), (IMAGENET, 1.96)):
        tokenized = tokenize([f"a photo of a {name}." for name in names])
        needed = tokens_processed(tokenized, "needed")
        assert tokens_processed(tokenized, "grouped") <= (1 + LENGTH_SLACK) * needed
        # cutting all prompts at the longest EOT: ImageNet's long names pad the others to twice their length
        assert tokens_processed(tokenized, "longest") / needed == pytest.approx(longest_over_needed, abs=0.01)
        assert tokens_processed(tokenized, "full") == 77 * len(names)
        # GOPro's 4 images x 3 views: SOT and "a photo of a" once per image, the classes' tokens after them
        assert tokens_processed(tokenized, "grouped", images=12, shared_prefix=5) < 0.52 * 12 * needed


def per_image_case(model, requires_grad=True):
    """Per-image prompts of classes of many lengths (B=3) and MaPLe-style deep prompts, all as leaves."""
    torch.manual_seed(3)
    learner = PromptLearner(CLASSNAMES, model, n_ctx=4)
    shift = torch.randn(3, learner.ctx.shape[-1]).requires_grad_(requires_grad)
    deep = [None] + [torch.randn(4, learner.ctx.shape[-1]).mul(0.1).requires_grad_(requires_grad)
                     for _ in range(2)]
    return learner, shift, deep


def values_and_gradients(encoder, learner, shift, deep, **kwargs):
    for leaf in (shift, *deep[1:]):
        leaf.grad = None
    features = encoder(learner(shift), learner.tokenized_prompts, deep_prompts=deep, **kwargs)
    (features * torch.linspace(-1, 1, features.shape[-1])).sum().backward()
    return features.detach(), [leaf.grad.clone() for leaf in (shift, *deep[1:])]


def assert_same_pass(got, expected) -> None:
    """(features, gradients) of two passes equal within float tolerance."""
    torch.testing.assert_close(got[0], expected[0], **TOL)
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_length_grouping_equals_the_padded_batch_with_gradients(clips, no_call_overhead):
    model = clips["tiny-ViT"]
    encoder = TextEncoder(model)
    learner, shift, deep = per_image_case(model)
    eot = learner.tokenized_prompts.argmax(-1)
    counts = torch.bincount(eot + 1).tolist()
    assert len(length_groups(tuple((n, c) for n, c in enumerate(counts) if c))) > 1  # several groups form
    grouped = values_and_gradients(encoder, learner, shift, deep)
    for kwargs in ({"group_by_length": False}, {"truncate": False}):
        assert_same_pass(grouped, values_and_gradients(encoder, learner, shift, deep, **kwargs))


def test_recomputed_chunks_equal_the_whole_pass_and_keep_only_their_input(clips, no_call_overhead):
    model = clips["tiny-ViT"]
    encoder = TextEncoder(model)
    learner, shift, deep = per_image_case(model)
    weights = list(model.parameters())
    kept_all, _ = saved_bytes(lambda: values_and_gradients(encoder, learner, shift, deep), exclude=weights)
    whole = values_and_gradients(encoder, learner, shift, deep)
    encoder.recompute_batch = 4  # 3 images x 6 classes = 18 sequences, in chunks of 4 per length group
    calls = []
    hook = encoder.transformer.resblocks[0].ln_1.register_forward_hook(lambda *_: calls.append(1))
    try:
        kept_chunked, _ = saved_bytes(lambda: encoder(learner(shift), learner.tokenized_prompts, deep_prompts=deep),
                                      exclude=weights)
        forward_calls = len(calls)
        chunked = values_and_gradients(encoder, learner, shift, deep)
    finally:
        hook.remove()
    assert_same_pass(chunked, whole)
    assert kept_chunked < 0.2 * kept_all  # activations are not kept ...
    assert forward_calls >= 5 and len(calls) == 3 * forward_calls  # ... but recomputed, chunk by chunk, in backward
    with torch.no_grad():  # no gradient: the evaluation chunking applies, no checkpointing
        torch.testing.assert_close(encoder(learner(shift), learner.tokenized_prompts, deep_prompts=deep), whole[0],
                                   **TOL)


def encoder_inputs(encoder):
    """Records the (sequences, positions) of every pass through the first block."""
    shapes = []
    hook = encoder.transformer.resblocks[0].ln_1.register_forward_hook(lambda m, args, out: shapes.append(
        tuple(args[0].shape[:2])))
    return shapes, hook


def test_shared_prefix_runs_once_per_image_and_equals_separate_prompts(clips, no_call_overhead):
    model = clips["tiny-ViT"]
    encoder = TextEncoder(model)
    learner, shift, deep = per_image_case(model)
    prefix = class_prompt_prefix(learner, learner.tokenized_prompts)
    assert prefix == 1 + 4  # SOT and the 4 context tokens
    separate = values_and_gradients(encoder, learner, shift, deep, truncate=False)
    shapes, hook = encoder_inputs(encoder)
    try:
        shared = values_and_gradients(encoder, learner, shift, deep, shared_prefix=prefix)
    finally:
        hook.remove()
    assert shapes[0] == (3, prefix)  # the shared positions: one sequence per image
    assert len(shapes) > 2  # and the classes in several length groups
    assert all(length <= 77 - prefix for _, length in shapes[1:])
    assert_same_pass(shared, separate)
    encoder.recompute_batch = 5  # and with the classes' chunks recomputed in backward
    assert_same_pass(values_and_gradients(encoder, learner, shift, deep, shared_prefix=prefix), separate)


def test_prefix_is_shared_only_when_it_is_one_context_for_every_class(clips, no_call_overhead):
    model = clips["tiny-ViT"]
    encoder = TextEncoder(model)
    torch.manual_seed(4)
    csc = PromptLearner(CLASSNAMES, model, n_ctx=4, csc=True)  # one context per class: nothing is shared
    assert class_prompt_prefix(csc, csc.tokenized_prompts) is None
    middle = PromptLearner(CLASSNAMES, model, n_ctx=4, class_token_position="middle")
    assert class_prompt_prefix(middle, middle.tokenized_prompts) is None
    with torch.no_grad():  # without gradients the ids' common prefix is tried, and the embeddings checked
        for learner in (csc, PromptLearner(CLASSNAMES, model, n_ctx=4)):
            shapes, hook = encoder_inputs(encoder)
            try:
                got = encoder(learner(), learner.tokenized_prompts)
            finally:
                hook.remove()
            torch.testing.assert_close(got, encoder(learner(), learner.tokenized_prompts, truncate=False), **TOL)
            assert (shapes[0] == (1, 5)) == (learner is not csc)
    # class-specific leaves that happen to be equal: each keeps its own gradient (no sharing with gradients)
    leaf = PromptLearner(CLASSNAMES, model, n_ctx=4)().detach().requires_grad_(True)
    weights = torch.linspace(-1, 1, len(CLASSNAMES))[:, None]
    (encoder(leaf, csc.tokenized_prompts) * weights).sum().backward()
    grad = leaf.grad.clone()
    leaf.grad = None
    (encoder(leaf, csc.tokenized_prompts, truncate=False) * weights).sum().backward()
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-3, atol=1e-4)


def test_small_batches_stay_one_call(clips):
    """The tiny encoder's passes cost more than the few tokens a split would save: one call, no shared pass."""
    model = clips["tiny-ViT"]
    encoder = TextEncoder(model)
    learner, shift, _ = per_image_case(model, requires_grad=False)
    assert call_overhead_tokens(encoder, torch.device("cpu")) > 3 * len(CLASSNAMES) * 5
    shapes, hook = encoder_inputs(encoder)
    try:
        with torch.no_grad():
            got = encoder(learner(shift), learner.tokenized_prompts)
    finally:
        hook.remove()
    assert shapes == [(3 * len(CLASSNAMES), learner.tokenized_prompts.shape[1])]
    with torch.no_grad():
        torch.testing.assert_close(got, encoder(learner(shift), learner.tokenized_prompts, truncate=False), **TOL)
