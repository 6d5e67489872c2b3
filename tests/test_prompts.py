"""Prompt construction: with the context set to the token embeddings of real words, the assembled CoOp
prompts (class token at the end, middle or front; shared or class-specific context) are exactly the
token embeddings of the equivalent text prompt; CTX_INIT sets the context length to its token count."""
import pytest
import torch

from promptlearn.errors import UserError
from promptlearn.modeling import PromptLearner, load_clip, tokenize
from promptlearn.modeling.prompts import count_tokens, embed_tokens

CLASSNAMES = ["cat", "golden_retriever", "black-footed ferret", "sea anemone"]
PHRASE = ["a", "photo", "of", "a"]
WORDS16 = PHRASE + ["big", "red", "and", "shiny", "thing", "that", "is", "on", "the", "table", "in", "my"]


@pytest.fixture(scope="module")
def clip_model():
    return load_clip("tiny-ViT").float()


def text_embedding(model, texts, length):
    tokens = tokenize(texts)
    return embed_tokens(model, tokens)[:, :length], tokens[:, :length]


def layout(words, name, position):
    """The text a prompt stands for: context words around the class name, then the period."""
    name = name.replace("_", " ")
    half = len(words) // 2
    if position == "end":
        parts = words + [name]
    elif position == "middle":
        parts = words[:half] + [name] + words[half:]
    else:
        parts = [name] + words
    return " ".join(parts) + "."


def word_embeddings(model, words):
    assert all(count_tokens(w) == 1 for w in words)  # one token per word, so rows map to words
    ids = tokenize([" ".join(words)])
    return embed_tokens(model, ids)[0, 1:1 + len(words)]


@pytest.mark.parametrize("position", ["end", "middle", "front"])
@pytest.mark.parametrize("n_words", [4, 16])
def test_shared_context_equals_text_prompt(clip_model, position, n_words):
    words = WORDS16[:n_words]
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=n_words, class_token_position=position)
    with torch.no_grad():
        learner.ctx.copy_(word_embeddings(clip_model, words))
        prompts = learner()
    length = learner.tokenized_prompts.shape[1]
    expected, expected_ids = text_embedding(clip_model, [layout(words, c, position) for c in CLASSNAMES], length)
    assert prompts.shape == (len(CLASSNAMES), length, clip_model.ln_final.weight.shape[0])
    assert torch.equal(prompts, expected)
    assert torch.equal(learner.tokenized_prompts.argmax(-1), expected_ids.argmax(-1))  # the same EOT positions
    assert int(expected_ids.argmax(-1).max()) == length - 1  # cut right after the longest EOT


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_class_specific_context_equals_text_prompts(clip_model, position):
    per_class_words = [WORDS16[i:i + 6] for i in range(len(CLASSNAMES))]
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=6, csc=True, class_token_position=position)
    width = clip_model.ln_final.weight.shape[0]
    assert learner.ctx.shape == (len(CLASSNAMES), 6, width)
    with torch.no_grad():
        learner.ctx.copy_(torch.stack([word_embeddings(clip_model, w) for w in per_class_words]))
        prompts = learner()
    texts = [layout(w, c, position) for w, c in zip(per_class_words, CLASSNAMES)]
    expected, _ = text_embedding(clip_model, texts, learner.tokenized_prompts.shape[1])
    assert torch.equal(prompts, expected)


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_ctx_init_phrase(clip_model, position):
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=16, ctx_init="a photo of a", class_token_position=position)
    assert learner.n_ctx == 4 and learner.ctx.shape == (4, clip_model.ln_final.weight.shape[0])  # N_CTX is ignored
    phrase_ids = tokenize(["a photo of a"])[0, 1:5]
    assert phrase_ids.tolist() == [320, 1125, 539, 320]
    assert torch.equal(learner.ctx.detach(), clip_model.token_embedding.weight[phrase_ids])
    with torch.no_grad():
        prompts = learner()
    expected, _ = text_embedding(clip_model, [layout(PHRASE, c, position) for c in CLASSNAMES],
                                 learner.tokenized_prompts.shape[1])
    assert torch.equal(prompts, expected)


def test_ctx_init_counts_bpe_tokens_not_words(clip_model):
    phrase = "itap of a"
    n_tokens = count_tokens(phrase)
    assert n_tokens > len(phrase.split())  # "itap" is more than one BPE token
    learner = PromptLearner(["cat"], clip_model, n_ctx=16, ctx_init="itap_of_a")  # "_" reads as a space
    assert learner.n_ctx == n_tokens
    expected, _ = text_embedding(clip_model, ["itap of a cat."], learner.tokenized_prompts.shape[1])
    with torch.no_grad():
        assert torch.equal(learner(), expected)


def test_ctx_init_gives_a_shared_context_even_with_csc(clip_model):
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=16, ctx_init="a photo of a", csc=True)
    assert learner.ctx.dim() == 2


def test_honoured_n_ctx_keeps_the_phrase_as_text(clip_model):
    short = PromptLearner(["cat"], clip_model, n_ctx=2, ctx_init="a photo of a", honour_n_ctx=True)
    assert short.ctx.shape[0] == 2
    expected, _ = text_embedding(clip_model, ["a photo of a cat."], short.tokenized_prompts.shape[1])
    with torch.no_grad():
        assert torch.equal(short(), expected)
    longer = PromptLearner(["cat"], clip_model, n_ctx=6, ctx_init="a photo of a", honour_n_ctx=True)
    assert longer.ctx.shape[0] == 6 and longer.prompt_prefix == "X X a photo of a"
    assert torch.equal(longer.ctx[2:].detach(), word_embeddings(clip_model, PHRASE))


def test_random_context_shapes_and_buffers(clip_model):
    torch.manual_seed(0)
    width = clip_model.ln_final.weight.shape[0]
    generic = PromptLearner(CLASSNAMES, clip_model, n_ctx=8)
    csc = PromptLearner(CLASSNAMES, clip_model, n_ctx=8, csc=True)
    assert generic.ctx.shape == (8, width) and csc.ctx.shape == (4, 8, width)
    assert generic.prompt_prefix == " ".join(["X"] * 8)
    assert 0.015 < float(csc.ctx.detach().std()) < 0.025  # N(0, 0.02^2)
    length = generic.tokenized_prompts.shape[1]
    assert generic.token_prefix.shape == (4, 1, width)
    assert generic.token_suffix.shape == (4, length - 1 - 8, width)
    assert set(generic.state_dict()) == {"ctx", "token_prefix", "token_suffix"}  # token ids are not saved
    assert generic().shape == csc().shape == (4, length, width)


def test_image_conditioned_shift(clip_model):
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=4, class_token_position="middle")
    shift = torch.randn(3, clip_model.ln_final.weight.shape[0], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prompts = learner(shift)
        assert prompts.shape[:2] == (3, len(CLASSNAMES))
        for b in range(3):
            assert torch.equal(prompts[b], learner.assemble(learner.ctx + shift[b]))


def test_bad_inputs_are_user_errors(clip_model):
    with pytest.raises(UserError, match="class token position"):
        PromptLearner(CLASSNAMES, clip_model, n_ctx=4, class_token_position="start")
    with pytest.raises(UserError, match="too long"):
        PromptLearner(["word " * 80], clip_model, n_ctx=4)
    with pytest.raises(UserError, match="at least 1"):
        PromptLearner(CLASSNAMES, clip_model, n_ctx=0)
