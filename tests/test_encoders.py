"""The shared encoders against OpenAI's unmodified CLIP on tiny backbones: TextEncoder equals
``encode_text`` and ImageEncoder equals ``encode_image``; sequence truncation after the longest EOT does
not change the text features (several prompt lengths, class token at the end, middle and front); the
per-layer token taps match the model's own residual blocks; ResNet backbones refuse taps."""
import pytest
import torch

from promptlearn.errors import UserError
from promptlearn.modeling import ImageEncoder, PromptLearner, TextEncoder, load_clip, tokenize
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
