"""SLIP: base-to-new through train.py (train, reload, new classes); both loss terms against an independent
computation from CLIP's own forward pass, a hand-written head and a loop-form NT-Xent; what it trains (the
configured blocks and LayerNorm and the head, nothing else) and where each loss's gradient goes; the staged
learning rates; its two views; the precision rule and the other config checks; the paper configs."""
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT
from PIL import Image
from torchvision.transforms import ColorJitter, GaussianBlur, RandomApply, RandomResizedCrop
from trainer_runs import DATASET_CONFIG, check_reload_and_new_classes, merged_config, run_base_to_new

import train
from promptlearn.data.transforms.views import build_slip_view
from promptlearn.engine import build_trainer
from promptlearn.errors import UserError
from promptlearn.modeling import load_clip, tokenize
from promptlearn.modeling.backbones import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from promptlearn.utils import set_random_seed
from trainers.slip import SLIP, VIEW_KEYS

CONFIG = os.path.join(REPO_ROOT, "configs", "trainers", "SLIP", "tiny_vit_demo.yaml")
DATASET_YAML = os.path.join(REPO_ROOT, DATASET_CONFIG)
MODEL_NAME = SLIP.MODEL_NAME
LAYERS = 4  # tiny-ViT's image encoder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_slip(root: str, opts=()) -> SLIP:
    """The trainer train.py builds from the tiny config (2 shots of the base classes, fp32 on a CPU)."""
    args = train.build_parser().parse_args([
        "--root", root, "--seed", "1", "--trainer", "SLIP", "--dataset-config-file", DATASET_YAML,
        "--config-file", CONFIG, "DATASET.NUM_SHOTS", "2", "DATASET.SUBSAMPLE_CLASSES", "base", *map(str, opts)])
    cfg = train.setup_cfg(args)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def first_batch(trainer: SLIP) -> dict:
    set_random_seed(1)
    return next(iter(trainer.train_loader_x))


def test_base_to_new_through_train_py(demo_root, tmp_path):
    run = run_base_to_new("SLIP", CONFIG, demo_root, str(tmp_path))
    check_reload_and_new_classes(run, MODEL_NAME)
    assert "loss_ce" in run.train_log and "loss_ssl" in run.train_log
    state = run.checkpoint(MODEL_NAME, 1)["state_dict"]
    prefixes = {key.split(".")[0] + ("." + key.split(".")[1] if key.startswith("tuned_image") else "")
                for key in state}
    assert prefixes == {"tuned_image.blocks", "tuned_image.ln_post", "ssl_head"}
    assert {key.split(".")[2] for key in state if key.startswith("tuned_image.blocks")} == {"0"}  # one block


def manual_head(head, x: torch.Tensor) -> torch.Tensor:
    """SLIP's head in training mode, written out: BatchNorm with the batch's biased variance."""
    def batch_norm(h, bn):
        mean, var = h.mean(0), h.var(0, unbiased=False)
        return (h - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias

    h = torch.relu(batch_norm(x @ head.layer1.weight.t() + head.layer1.bias, head.bn1))
    h = torch.relu(batch_norm(h @ head.layer2.weight.t() + head.layer2.bias, head.bn2))
    return h @ head.layer3.weight.t() + head.layer3.bias


def nt_xent_loops(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR's loss image by image: the positive is the other view of the same image, the negatives every other
    image in both views; averaged over both directions."""
    z_a, z_b = F.normalize(z_a.double(), dim=-1), F.normalize(z_b.double(), dim=-1)
    n = z_a.shape[0]
    total = 0.0
    for queries, keys in ((z_a, z_b), (z_b, z_a)):
        for i in range(n):
            positive = torch.exp(queries[i] @ keys[i] / tau)
            others = sum(torch.exp(queries[i] @ keys[j] / tau) for j in range(n) if j != i)
            others = others + sum(torch.exp(queries[i] @ queries[j] / tau) for j in range(n) if j != i)
            total = total - torch.log(positive / (positive + others))
    return total / (2 * n)


def test_loss_terms_equal_an_independent_computation(demo_root):
    trainer = build_slip(demo_root, ["TRAINER.SLIP.W_CE", "0.7", "TRAINER.SLIP.W_SSL", "1.3"])
    trainer.set_model_mode("train")
    batch = first_batch(trainer)
    image, label = trainer.parse_batch_train(batch)
    assert all(batch[key].shape == image.shape for key in VIEW_KEYS)
    loss, summary = trainer.compute_loss(batch, image, label)

    clip_model = load_clip("tiny-ViT").float().eval()  # the same seeded weights, run by OpenAI's own code
    names = [name.replace("_", " ") for name in trainer.dm.dataset.classnames]
    with torch.no_grad():
        text = F.normalize(clip_model.encode_text(tokenize([f"a photo of a {n}." for n in names])), dim=-1)
        features = [clip_model.visual(batch[key]) for key in ("img", *VIEW_KEYS)]
        logits = clip_model.logit_scale.exp() * F.normalize(features[0], dim=-1) @ text.t()
        ce = (torch.logsumexp(logits, dim=1) - logits[torch.arange(len(label)), label]).mean()
        head = trainer.model.ssl_head
        ssl = nt_xent_loops(manual_head(head, features[1]), manual_head(head, features[2]), 0.1)
    assert summary["loss_ce"] == pytest.approx(ce.item(), rel=1e-4)
    assert summary["loss_ssl"] == pytest.approx(ssl.item(), rel=1e-4)
    assert loss.item() == pytest.approx(0.7 * ce.item() + 1.3 * ssl.item(), rel=1e-4)


def test_what_is_trained(demo_root):
    trainer = build_slip(demo_root, ["TRAINER.SLIP.TRAIN_BLOCKS", "2", "TRAINER.SLIP.TRAIN_LN_POST", "False"])
    trained = {name for name, p in trainer.model.named_parameters() if p.requires_grad}
    blocks = {name.split(".")[4] for name in trained if name.startswith("image_encoder.visual.transformer")}
    assert blocks == {str(LAYERS - 2), str(LAYERS - 1)}  # the last two blocks, in full
    assert {name.split(".")[0] for name in trained} == {"image_encoder", "ssl_head"}
    assert not any("ln_post" in name or name.endswith(".proj") or "conv1" in name for name in trained)
    assert trainer.model.text_features().requires_grad is False
    with pytest.raises(UserError, match="TRAIN_BLOCKS must be between 0 and 4"):
        build_slip(demo_root, ["TRAINER.SLIP.TRAIN_BLOCKS", "5"])
    with pytest.raises(UserError, match="needs a ViT backbone"):
        build_slip(demo_root, ["MODEL.BACKBONE.NAME", "tiny-RN"])


def block_grads(trainer: SLIP, w_ce: float, w_ssl: float) -> dict:
    """Which learned parts get a gradient from one step's loss with these weights."""
    trainer.method_cfg.defrost()
    trainer.method_cfg.W_CE, trainer.method_cfg.W_SSL = w_ce, w_ssl
    trainer.set_model_mode("train")
    trainer.model.zero_grad(set_to_none=True)
    batch = first_batch(trainer)
    loss, _ = trainer.compute_loss(batch, *trainer.parse_batch_train(batch))
    loss.backward()

    def reached(module) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    tuned = trainer.model.tuned_image
    return {"block": reached(tuned["blocks"]), "ln_post": reached(tuned["ln_post"]),
            "head": reached(trainer.model.ssl_head)}


def test_each_loss_reaches_the_trained_encoder(demo_root):
    trainer = build_slip(demo_root)
    # SimCLR alone trains the head and, through it, the encoder's blocks that the classifier uses
    assert block_grads(trainer, 0.0, 1.0) == {"block": True, "ln_post": True, "head": True}
    # cross-entropy alone trains the encoder and leaves the head alone
    assert block_grads(trainer, 1.0, 0.0) == {"block": True, "ln_post": True, "head": False}


def test_staged_learning_rates(demo_root):
    trainer = build_slip(demo_root)
    cfg = trainer.cfg.OPTIM
    base_group, head_group = trainer._optims[MODEL_NAME].param_groups
    head = {id(p) for p in trainer.model.ssl_head.parameters()}
    assert head == {id(p) for p in head_group["params"]} and not head & {id(p) for p in base_group["params"]}
    assert head_group["initial_lr"] == pytest.approx(cfg.LR)
    assert base_group["initial_lr"] == pytest.approx(cfg.LR * cfg.BASE_LR_MULT)


def test_slip_view():
    view = build_slip_view((32, 32), CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
    crop, jitter, _, blur = view.transforms[:4]
    assert isinstance(crop, RandomResizedCrop) and crop.scale == (0.08, 1.0)
    assert isinstance(jitter, RandomApply) and jitter.p == 0.8 and isinstance(jitter.transforms[0], ColorJitter)
    assert jitter.transforms[0].saturation == (0.6, 1.4)  # SLIP's 0.4 (MoCo v3's view has 0.2)
    assert isinstance(blur, RandomApply) and blur.p == 0.5 and isinstance(blur.transforms[0], GaussianBlur)
    torch.manual_seed(0)
    image = Image.new("RGB", (40, 40), (200, 30, 90))
    assert view(image).shape == (3, 32, 32)


@pytest.mark.parametrize("opts,message", [
    (["TRAINER.SLIP.PREC", "fp16"], "use amp"),
    (["TRAINER.SLIP.TRAIN_BLOCKS", "0", "TRAINER.SLIP.TRAIN_LN_POST", "False"], "trains nothing"),
    (["DATALOADER.TRAIN_X.BATCH_SIZE", "1"], "at least 2"),
    (["TRAINER.SLIP.SSL_TEMPERATURE", "0.0"], "must be positive"),
])
def test_config_errors(cli, demo_root, tmp_path, opts, message):
    code, _, err = cli(["--root", demo_root, "--trainer", "SLIP", "--dataset-config-file", DATASET_YAML,
                        "--config-file", CONFIG, "--output-dir", tmp_path / "out", *opts])
    assert code == 1 and message in err


@pytest.mark.parametrize("name,epochs", [("vit_b16", 10), ("vit_b16_xd", 5)])
def test_paper_configs(name, epochs):
    cfg = merged_config("SLIP", os.path.join(REPO_ROOT, "configs", "trainers", "SLIP", f"{name}.yaml"))
    s = cfg.TRAINER.SLIP
    assert (s.PREC, s.TRAIN_BLOCKS, s.TRAIN_LN_POST, s.MLP_DIM, s.EMB_DIM, s.SSL_TEMPERATURE) == \
        ("amp", 1, True, 4096, 256, 0.1)
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16" and tuple(cfg.INPUT.SIZE) == (224, 224)
    assert (cfg.OPTIM.NAME, cfg.OPTIM.MAX_EPOCH, cfg.OPTIM.STAGED_LR, list(cfg.OPTIM.NEW_LAYERS)) == \
        ("adamw", epochs, True, ["ssl_head"])
    assert abs(cfg.OPTIM.LR * cfg.OPTIM.BASE_LR_MULT - 1e-5) < 1e-12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_amp_on_cuda_keeps_fp32_master_weights(demo_root, tmp_path):
    """Under amp the trained CLIP blocks stay fp32 and the saved ones too; the step runs in autocast."""
    trainer = build_slip(demo_root, ["TRAINER.SLIP.PREC", "amp", "MODEL.BACKBONE.NAME", "random-ViT-B/16",
                                     "INPUT.SIZE", "(224, 224)", "TRAINER.SLIP.MLP_DIM", "64"])
    assert trainer.prec == "amp" and trainer.scaler is not None
    block = trainer.model.tuned_image["blocks"][0]
    before = block.mlp.c_fc.weight.detach().clone()
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 2
    summary = trainer.forward_backward(first_batch(trainer))
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
    assert block.mlp.c_fc.weight.dtype == torch.float32 and not torch.equal(block.mlp.c_fc.weight, before)


def test_readme_numbers():
    """README, SLIP: ViT-B/16's last block has 7.1 M parameters and the head 19.9 M; fp16 rounds a step of 1e-5 on
    a weight of 0.05 away (its steps there are 3e-5)."""
    from promptlearn.modeling.clip_compat import clip
    from trainers.slip import simclr_head

    block = clip.model.ResidualAttentionBlock(768, 12)
    assert round(sum(p.numel() for p in block.parameters()) / 1e6, 1) == 7.1
    assert round(sum(p.numel() for p in simclr_head(512, 4096, 256).parameters()) / 1e6, 1) == 19.9
    weight = torch.tensor(0.05, dtype=torch.float16)
    assert weight + 1e-5 == weight and weight.float() + 1e-5 != weight.float()
    assert (torch.nextafter(weight, torch.tensor(1.0, dtype=torch.float16)) - weight).item() == pytest.approx(3.05e-5,
                                                                                                              rel=1e-2)
