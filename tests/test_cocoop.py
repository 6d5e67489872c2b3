"""CoCoOp: the base-to-new protocol through train.py, the meta-net's image-conditioned shift, the batched
per-image text path, and the learnable parameters of the reference's ViT-B/16 shapes."""
import pytest
import torch
import torch.nn.functional as F
from trainer_runs import check_reload_and_new_classes, merged_config, run_base_to_new, schedule
from yacs.config import CfgNode as CN

from promptlearn.modeling import load_clip, tokenize
from promptlearn.modeling.clip_compat import clip
from promptlearn.modeling.prompts import embed_tokens
from trainers.cocoop import CoCoOpModel
from trainers.coop import CoOpModel

CLASSNAMES = ["circle", "hexagon", "shooting_star", "ring"]


def cocoop_cfg(n_ctx: int = 4, ctx_init: str = "a photo of a") -> CN:
    return CN({"N_CTX": n_ctx, "CTX_INIT": ctx_init, "PREC": "fp32"})


@pytest.fixture(scope="module")
def tiny_clip():
    return load_clip("tiny-ViT").float()


def test_base_to_new_through_train_py(demo_root, tmp_path, tiny_clip):
    run = run_base_to_new("CoCoOp", "configs/trainers/CoCoOp/tiny_vit_demo.yaml", demo_root, str(tmp_path))
    check_reload_and_new_classes(run, "prompt_learner")
    state = run.checkpoint("prompt_learner", epoch=1)["state_dict"]
    assert set(state) == {"ctx", "token_prefix", "token_suffix", "meta_net.linear1.weight", "meta_net.linear1.bias",
                          "meta_net.linear2.weight", "meta_net.linear2.bias"}
    initial_ctx = embed_tokens(tiny_clip, tokenize(["a photo of a"]))[0, 1:5]
    assert not torch.allclose(state["ctx"], initial_ctx)  # the reloaded checkpoint holds a trained context


def test_zero_meta_net_output_gives_coop(tiny_clip):
    torch.manual_seed(0)
    coop_cfg = CN({"N_CTX": 4, "CTX_INIT": "", "CSC": False, "CLASS_TOKEN_POSITION": "end", "PREC": "fp32"})
    coop = CoOpModel(tiny_clip, CLASSNAMES, coop_cfg).eval()
    cocoop = CoCoOpModel(tiny_clip, CLASSNAMES, cocoop_cfg(ctx_init="")).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        cocoop.prompt_learner.ctx.copy_(coop.prompt_learner.ctx)
        coop_logits = coop(images)
        conditioned = cocoop(images)
        cocoop.prompt_learner.meta_net.linear2.weight.zero_()
        cocoop.prompt_learner.meta_net.linear2.bias.zero_()
        unconditioned = cocoop(images)
    assert (conditioned - coop_logits).abs().max() > 1e-3  # the meta-net's shift changes the prompts
    torch.testing.assert_close(unconditioned, coop_logits)


def test_batched_prompts_equal_a_loop_over_images(tiny_clip):
    torch.manual_seed(0)
    model = CoCoOpModel(tiny_clip, CLASSNAMES, cocoop_cfg()).eval()
    learner = model.prompt_learner
    images = torch.randn(3, 3, 32, 32)
    # the reference's path: full-length (77) prompts, one text-encoder call per image
    tokenized = tokenize([f"a photo of a {name.replace('_', ' ')}." for name in CLASSNAMES])
    embedding = embed_tokens(tiny_clip, tokenized)
    prefix, suffix = embedding[:, :1], embedding[:, 1 + learner.n_ctx:]
    with torch.no_grad():
        batched = model(images)
        rows = []
        for image in images:
            feature = F.normalize(model.image_encoder(image[None]), dim=-1)
            ctx = (learner.ctx + learner.meta_net(feature)).expand(len(CLASSNAMES), -1, -1)
            prompts = torch.cat([prefix, ctx, suffix], dim=1)
            text = F.normalize(model.text_encoder(prompts, tokenized, truncate=False), dim=-1)
            rows.append(model.logit_scale.exp() * feature[0] @ text.t())
        torch.testing.assert_close(batched, torch.stack(rows))
        model.text_batch_size = 5  # 3 images x 4 classes = 12 prompts, encoded in chunks of 5
        torch.testing.assert_close(model(images), batched)


def test_meta_net_follows_clip_precision():
    images = torch.randn(2, 3, 32, 32)
    logits = {}
    for dtype, clip_model in [(torch.float16, load_clip("tiny-ViT")), (torch.float32, load_clip("tiny-ViT").float())]:
        torch.manual_seed(0)
        model = CoCoOpModel(clip_model, CLASSNAMES, cocoop_cfg())  # CLIP's own fp16 weights: PREC fp16
        assert {p.dtype for p in model.learnable_module().parameters()} == {dtype}
        logits[dtype] = model(images)
        F.cross_entropy(logits[dtype].float(), torch.tensor([0, 1])).backward()
        assert {p.grad.dtype for p in model.learnable_module().parameters()} == {dtype}
    torch.testing.assert_close(logits[torch.float16].float(), logits[torch.float32], atol=2e-2, rtol=1e-2)


def test_vit_b16_learnable_parameters():
    clip_model = clip.model.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12)
    learner = CoCoOpModel(clip_model, CLASSNAMES, cocoop_cfg()).learnable_module()
    shapes = {name: tuple(p.shape) for name, p in learner.named_parameters()}
    assert shapes == {"ctx": (4, 512), "meta_net.linear1.weight": (32, 512), "meta_net.linear1.bias": (32,),
                      "meta_net.linear2.weight": (512, 32), "meta_net.linear2.bias": (512,)}
    # 4 x 512 context + (512 x 32 + 32) + (32 x 512 + 512) meta-net = 2,048 + 16,416 + 16,896
    assert sum(p.numel() for p in learner.parameters()) == 35_360



@pytest.mark.parametrize("name, n_ctx, ctx_init", [("vit_b16_c4_ep10_batch1_ctxv1", 4, "a photo of a"),
                                                  ("vit_b16_c4_ep10_batch1", 4, ""), ("vit_b16_c8_ep10_batch1", 8, ""),
                                                  ("vit_b16_c16_ep10_batch1", 16, "")])
def test_vit_b16_configs(name, n_ctx, ctx_init):
    cfg = merged_config("CoCoOp", f"configs/trainers/CoCoOp/{name}.yaml")
    assert dict(cfg.TRAINER.COCOOP) == {"N_CTX": n_ctx, "CTX_INIT": ctx_init, "PREC": "fp16"}
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16" and tuple(cfg.INPUT.SIZE) == (224, 224)
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATALOADER.TEST.BATCH_SIZE, cfg.TRAIN.PRINT_FREQ) == (1, 100, 20)
    assert schedule(cfg) == {"NAME": "sgd", "LR": 0.002, "MAX_EPOCH": 10, "LR_SCHEDULER": "cosine", "WARMUP_EPOCH": 1,
                             "WARMUP_TYPE": "constant", "WARMUP_CONS_LR": 1e-5}
