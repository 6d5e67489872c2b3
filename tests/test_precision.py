"""Reduced precision and the fused optimizer step: PREC amp on a CPU autocasts to bfloat16 when MODEL.CPU_AMP opts
in and the CPU has bfloat16 instructions (no gradient scaler), falls back to fp32 otherwise, and stays within
bfloat16's tolerance of fp32 (loss, gradients, logits); OPTIM.FUSED gives the update of the loop over parameters."""
import logging

import pytest
import torch

import train
from promptlearn.engine import build_trainer
from promptlearn.modeling import precision
from promptlearn.optim import build_optimizer
from promptlearn.utils import set_random_seed

DATASET_YAML = "configs/datasets/demo_shapes.yaml"
COOP_YAML = "configs/trainers/CoOp/tiny_vit_demo.yaml"
#: bfloat16 keeps 8 significant bits (relative rounding 2^-9 per operation). Measured through the tiny CLIP's
#: 4 + 4 layers: logits within 0.04 of fp32's, loss within 0.01%, gradient cosine 0.9997; the bounds leave a margin
LOGIT_ATOL, LOSS_RTOL, GRAD_COSINE = 0.1, 0.01, 0.995


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def coop_trainer(root, output_dir, *opts):
    args = train.build_parser().parse_args([
        "--root", root, "--seed", "1", "--trainer", "CoOp", "--dataset-config-file", DATASET_YAML, "--config-file",
        COOP_YAML, "--output-dir", output_dir, "DATASET.NUM_SHOTS", "2", *map(str, opts)])
    cfg = train.setup_cfg(args)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def loss_grad_logits(trainer, batch):
    image, label = trainer.parse_batch_train(batch)
    trainer.set_model_mode("train")
    trainer.learner.zero_grad()
    with trainer.autocast():
        assert torch.is_autocast_enabled("cpu") == (trainer.prec == "amp")
        loss, _ = trainer.compute_loss(batch, image, label)
    loss.backward()
    grad = trainer.learner.ctx.grad.clone()
    trainer.set_model_mode("eval")
    with torch.no_grad():
        logits = trainer.model_inference(image)
    return loss.detach().float(), grad, logits


def test_cpu_amp_autocasts_to_bf16_within_tolerance_of_fp32(demo_root, tmp_path, monkeypatch):
    fp32 = coop_trainer(demo_root, str(tmp_path / "fp32"))
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    amp = coop_trainer(demo_root, str(tmp_path / "amp"), "TRAINER.COOP.PREC", "amp", "MODEL.CPU_AMP", True)
    assert (fp32.prec, amp.prec) == ("fp32", "amp")
    assert amp.scaler is None  # bfloat16 has fp32's exponent range: no loss scaling
    with amp.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    amp.learner.load_state_dict(fp32.learner.state_dict())
    set_random_seed(0)
    batch = next(iter(fp32.train_loader_x))

    loss32, grad32, logits32 = loss_grad_logits(fp32, batch)
    loss16, grad16, logits16 = loss_grad_logits(amp, batch)
    assert not torch.equal(logits16, logits32)  # bfloat16 did run
    assert logits16.dtype == torch.float32
    torch.testing.assert_close(logits16, logits32, atol=LOGIT_ATOL, rtol=0)
    torch.testing.assert_close(loss16, loss32, rtol=LOSS_RTOL, atol=0)
    assert torch.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0) > GRAD_COSINE
    # and a whole training step through the trainer's own path
    amp.set_model_mode("train")
    amp.batch_idx, amp.num_batches = 0, 2
    summary = amp.forward_backward(batch)
    assert torch.isfinite(torch.tensor(summary["loss"]))


def test_cpu_amp_needs_the_opt_in_and_bf16_hardware(monkeypatch, caplog):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    with caplog.at_level(logging.WARNING):
        assert precision.resolve_precision("amp", cpu, "TRAINER.COOP.PREC") == "fp32"
    assert "MODEL.CPU_AMP" in caplog.text
    assert precision.resolve_precision("amp", cpu, "TRAINER.COOP.PREC", cpu_amp=True) == "amp"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert precision.resolve_precision("amp", cpu, "TRAINER.COOP.PREC", cpu_amp=True) == "fp32"
    assert "no bfloat16 instructions" in caplog.text
    assert precision.resolve_precision("fp16", cpu, cpu_amp=True) == "fp32"
    assert precision.grad_scaler("amp", cpu) is None and precision.grad_scaler("fp32", cpu) is None


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_optimizer_step_equals_the_loop(name):
    from promptlearn.config import get_cfg_default

    cfg = get_cfg_default().OPTIM.clone()
    cfg.defrost()
    cfg.NAME = name
    weights = {}
    for fused in (False, True):
        cfg.FUSED = fused
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
        optimizer = build_optimizer(module, cfg)
        assert optimizer.defaults.get("fused") is (True if fused else None)
        for step in range(3):
            torch.manual_seed(10 + step)
            module(torch.randn(5, 8)).square().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        weights[fused] = [p.detach().clone() for p in module.parameters()]
    for loop, fused in zip(weights[False], weights[True]):
        torch.testing.assert_close(fused, loop, rtol=1e-6, atol=1e-7)
