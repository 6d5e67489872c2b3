"""MaPLe: the base-to-new protocol through train.py, the layer-by-layer prompt replacement in both encoders,
shallow prompting at depth 1, the prompt-depth check, checkpoint keys, and the learnable parameters of the
reference's ViT-B/16 shapes."""
import pytest
import torch
import torch.nn.functional as F
from trainer_runs import check_reload_and_new_classes, merged_config, run_base_to_new, schedule
from yacs.config import CfgNode as CN

from promptlearn.errors import UserError
from promptlearn.modeling import encoders, load_clip, prompted_clip, tokenize
from promptlearn.modeling.clip_compat import clip
from promptlearn.modeling.prompts import embed_tokens
from trainers.maple import MaPLe, MaPLeModel

CLASSNAMES = ["circle", "hexagon", "shooting_star", "ring"]
MODEL_NAME = "MultiModalPromptLearner"


def maple_cfg(depth: int, n_ctx: int = 2, ctx_init: str = "a photo of a") -> CN:
    return CN({"N_CTX": n_ctx, "CTX_INIT": ctx_init, "PREC": "fp32", "PROMPT_DEPTH": depth})


@pytest.fixture(scope="module")
def tiny_clip():
    return load_clip("tiny-ViT").float()  # 4 layers in each encoder


@pytest.fixture
def block_calls(monkeypatch):
    """Every transformer block the encoders run, in order: (causal, input, output). The encoders run the
    blocks through ``encoders.residual_block`` and, for the last layer's pooled token, ``residual_block_at``
    (not the blocks' own forward), so that is what is watched; the text prompts' shared positions are not
    split off, so that every text layer's input is one tensor."""
    calls = []
    monkeypatch.setattr(prompted_clip, "class_prompt_prefix", lambda *args: 0)
    for name in ("residual_block", "residual_block_at"):
        run_block = getattr(encoders, name)

        def recording(block, x, *args, run_block=run_block, **kwargs):
            out = run_block(block, x, *args, **kwargs)
            calls.append((kwargs["causal"], x.detach().clone(), out.detach().clone()))
            return out

        monkeypatch.setattr(encoders, name, recording)
    return calls


def test_base_to_new_through_train_py(demo_root, tmp_path, tiny_clip):
    run = run_base_to_new("MaPLe", "configs/trainers/MaPLe/tiny_vit_demo.yaml", demo_root, str(tmp_path))
    check_reload_and_new_classes(run, MODEL_NAME)
    state = run.checkpoint(MODEL_NAME, epoch=1)["state_dict"]
    assert all(key.startswith("prompt_learner.") for key in state)
    assert len(state["prompt_learner.compound_prompts_text.1"]) == 2  # PROMPT_DEPTH 3, N_CTX 2
    initial_ctx = embed_tokens(tiny_clip, tokenize(["a photo"]))[0, 1:3]
    assert not torch.allclose(state["prompt_learner.ctx"], initial_ctx)  # the reloaded checkpoint holds trained prompts


def check_layer_inputs(calls, slots: slice, prompts, depth: int, close: bool = False) -> None:
    """Layer i's input is layer i-1's output, except in ``slots`` of layers 1..depth-1, which hold prompts[i]
    (``close``: up to rounding, for prompts computed by another matrix product than the model's)."""
    for i in range(1, len(calls)):
        layer_input, previous_output = calls[i][0], calls[i - 1][1]
        others = torch.ones(layer_input.shape[1], dtype=torch.bool)
        others[slots] = False
        assert torch.equal(layer_input[:, others], previous_output[:, others])
        if i < depth:
            expected = prompts[i].expand(len(layer_input), -1, -1)
            if close:
                torch.testing.assert_close(layer_input[:, slots], expected)
            else:
                assert torch.equal(layer_input[:, slots], expected)
            assert not torch.allclose(layer_input[:, slots], previous_output[:, slots])
        else:
            assert torch.equal(layer_input[:, slots], previous_output[:, slots])


def coupled_vision_prompts(learner) -> list:
    """MaPLe's vision prompts from the learner's tensors: layer 0's is proj applied to the context, layer i's
    (i >= 1) is coupling i applied to text prompt i; each a hand-written x W^T + b."""
    def linear(x, layer):
        return x @ layer.weight.t() + layer.bias

    deep = [linear(prompt, coupling) for prompt, coupling in zip(learner.compound_prompts_text,
                                                                  learner.compound_prompt_projections)]
    return [linear(learner.ctx, learner.proj), *deep]


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_prompts_replace_exactly_their_slots_in_their_layers(tiny_clip, block_calls, depth):
    torch.manual_seed(0)
    model = MaPLeModel(tiny_clip, CLASSNAMES, maple_cfg(depth)).eval()
    learner = model.prompt_learner
    m = learner.n_ctx
    with torch.no_grad():  # every coupling different (they start equal), so that using another layer's shows
        for coupling in learner.compound_prompt_projections:
            torch.nn.init.normal_(coupling.weight, std=0.05)
            torch.nn.init.normal_(coupling.bias, std=0.05)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model(images)
        vision_prompts = coupled_vision_prompts(learner)
    text_calls = [(x, y) for causal, x, y in block_calls if causal]
    vision_calls = [(x, y) for causal, x, y in block_calls if not causal]
    assert len(text_calls) == len(vision_calls) == 4

    # layer 0: the text context follows SOT; its projection is appended after the image tokens
    context = learner.ctx + tiny_clip.positional_embedding[1:1 + m]
    assert torch.equal(text_calls[0][0][:, 1:1 + m], context.expand(len(CLASSNAMES), -1, -1))
    n_tokens = model.image_encoder.num_tokens
    vision_input = vision_calls[0][0]
    assert vision_input.shape[1] == n_tokens + m
    torch.testing.assert_close(vision_input[:, n_tokens:], tiny_clip.visual.ln_pre(vision_prompts[0]).expand(2, -1, -1))

    check_layer_inputs(text_calls, slice(1, 1 + m), [None, *learner.compound_prompts_text], depth)
    check_layer_inputs(vision_calls, slice(n_tokens, n_tokens + m), vision_prompts, depth, close=True)


def test_depth_one_is_shallow_prompting(tiny_clip):
    model = MaPLeModel(tiny_clip, CLASSNAMES, maple_cfg(1)).eval()
    learner = model.prompt_learner
    assert [name for name, _ in learner.named_parameters()] == ["ctx", "proj.weight", "proj.bias"]
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        text = F.normalize(model.text_encoder(learner(), learner.tokenized_prompts), dim=-1)
        image = model.image_encoder(images, visual_prompts=[learner.proj(learner.ctx)])
        torch.testing.assert_close(model(images), model.logits(image, text))


@pytest.mark.parametrize("depth", [0, 5])
def test_prompt_depth_beyond_the_encoders_is_a_user_error(tiny_clip, depth):
    with pytest.raises(UserError, match=r"PROMPT_DEPTH must be between 1 \(shallow prompting\) and 4"):
        MaPLeModel(tiny_clip, CLASSNAMES, maple_cfg(depth))


def test_resnet_backbone_is_a_user_error():
    with pytest.raises(UserError, match="needs a ViT backbone"):
        MaPLeModel(load_clip("tiny-RN").float(), CLASSNAMES, maple_cfg(1))


def test_init_checkpoint_keys_and_official_checkpoints(tiny_clip):
    torch.manual_seed(0)
    model = MaPLeModel(tiny_clip, CLASSNAMES, maple_cfg(3))
    learner = model.prompt_learner
    # MaPLe's init: N_CTX 2 learns "a photo", while "of a" stays fixed text before the class name
    assert learner.prompt_prefix == "a photo of a"
    assert torch.equal(learner.ctx, embed_tokens(tiny_clip, tokenize(["a photo"]))[0, 1:3])
    couplings = learner.compound_prompt_projections
    assert torch.equal(couplings[0].weight, couplings[1].weight) and couplings[0].weight is not couplings[1].weight

    module = model.learnable_module()
    prefix = "prompt_learner."
    assert set(module.state_dict()) == {prefix + key for key in [
        "ctx", "proj.weight", "proj.bias", "compound_prompts_text.0", "compound_prompts_text.1",
        "compound_prompt_projections.0.weight", "compound_prompt_projections.0.bias",
        "compound_prompt_projections.1.weight", "compound_prompt_projections.1.bias", "token_prefix", "token_suffix"]}
    # an official checkpoint holds the whole model, its CLIP weights included
    official = {f"image_encoder.{key}": value for key, value in tiny_clip.visual.state_dict().items()}
    official["logit_scale"] = tiny_clip.logit_scale.detach()
    official.update({key: value + 1 for key, value in module.state_dict().items()})
    state = MaPLe.filter_loaded_state(MaPLe.__new__(MaPLe), MODEL_NAME, official)
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert unexpected == [] and sorted(missing) == [prefix + "token_prefix", prefix + "token_suffix"]
    assert torch.equal(learner.compound_prompts_text[1], official[prefix + "compound_prompts_text.1"])


def test_dtypes_follow_clip_precision():
    images = torch.randn(2, 3, 32, 32)
    logits = {}
    for prec, clip_model in [("fp16", load_clip("tiny-ViT")), ("fp32", load_clip("tiny-ViT").float())]:
        torch.manual_seed(0)
        model = MaPLeModel(clip_model, CLASSNAMES, maple_cfg(3))
        learner = model.prompt_learner
        # the context and proj follow CLIP (fp16 under PREC fp16, fp32 under fp32/amp); deep prompts are fp32
        assert learner.ctx.dtype == learner.proj.weight.dtype == clip_model.dtype
        assert learner.compound_prompts_text[0].dtype == learner.compound_prompt_projections[0].weight.dtype
        assert learner.compound_prompts_text[0].dtype == torch.float32
        logits[prec] = model(images)
        F.cross_entropy(logits[prec].float(), torch.tensor([0, 1])).backward()
        assert all(p.grad is not None and p.grad.dtype == p.dtype for p in learner.parameters())
    torch.testing.assert_close(logits["fp16"].float(), logits["fp32"], atol=2e-2, rtol=1e-2)


@pytest.fixture(scope="module")
def vit_b16_clip():
    return clip.model.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12)


@pytest.mark.parametrize("depth, expected", [(9, 3_555_072), (3, 1_185_024)])
def test_vit_b16_learnable_parameters(vit_b16_clip, depth, expected):
    # 2 x 512 context + proj (512 x 768 + 768), and per deeper layer 2 x 512 prompts + a coupling (512 x 768 + 768):
    # 1,024 + 393,984 + (depth - 1) x (1,024 + 393,984)
    learner = MaPLeModel(vit_b16_clip, CLASSNAMES, maple_cfg(depth)).learnable_module()
    assert sum(p.numel() for p in learner.parameters()) == expected
    assert learner.prompt_learner.compound_prompt_projections[0].weight.shape == (768, 512)



@pytest.mark.parametrize("name, lr, epochs, depth", [("vit_b16_c2_ep5_batch4_2ctx", 0.0035, 5, 9),
                                                     ("vit_b16_c2_ep5_batch4_2ctx_cross_datasets", 0.0026, 2, 3)])
def test_vit_b16_configs(name, lr, epochs, depth):
    cfg = merged_config("MaPLe", f"configs/trainers/MaPLe/{name}.yaml")
    assert dict(cfg.TRAINER.MAPLE) == {"N_CTX": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH": depth}
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16" and tuple(cfg.INPUT.SIZE) == (224, 224)
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATALOADER.TEST.BATCH_SIZE, cfg.TRAIN.PRINT_FREQ) == (4, 100, 20)
    assert schedule(cfg) == {"NAME": "sgd", "LR": lr, "MAX_EPOCH": epochs, "LR_SCHEDULER": "cosine", "WARMUP_EPOCH": 1,
                             "WARMUP_TYPE": "constant", "WARMUP_CONS_LR": 1e-5}
