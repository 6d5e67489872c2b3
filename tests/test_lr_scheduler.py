"""LR schedules (Dassl's ``build_lr_scheduler``): the per-epoch LR of single_step, multi_step and cosine,
with constant or linear warmup and WARMUP_RECOUNT, checked against hand-computed values and the
worked table of REFERENCE §1.12; state dicts that survive ``torch.load(weights_only=True)``."""
import io
import math
import warnings

import pytest
import torch

from promptlearn.config import get_cfg_default
from promptlearn.errors import UserError
from promptlearn.optim import ConstantWarmupScheduler, LinearWarmupScheduler, build_lr_scheduler, build_optimizer


def optim_cfg(**overrides):
    cfg = get_cfg_default()
    cfg.OPTIM.NAME = "sgd"
    for key, value in overrides.items():
        setattr(cfg.OPTIM, key, value)
    return cfg.OPTIM


def build(cfg):
    param = torch.nn.Parameter(torch.zeros(4))
    optimizer = build_optimizer([param], cfg)
    return param, optimizer, build_lr_scheduler(optimizer, cfg)


def run_epochs(param, optimizer, scheduler, epochs):
    """The LR each epoch trains at, stepping the schedule once per epoch as the trainers do."""
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.ones_like(param)
        optimizer.step()
        scheduler.step()
    return lrs


def lr_curve(epochs, **overrides):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lrs = run_epochs(*build(optim_cfg(**overrides)), epochs)
    assert [str(w.message) for w in caught] == []
    return lrs


def cosine(lr, e, t):
    return lr * 0.5 * (1 + math.cos(math.pi * e / t))


@pytest.mark.parametrize(("lr", "max_epoch", "expected"), [
    (0.0035, 5, [1e-5, 0.0035, 0.0031658, 0.0022908, 0.0012092]),  # MaPLe base-to-new
    (0.0026, 2, [1e-5, 0.0026]),  # MaPLe cross-dataset
    (0.002, 10, [1e-5, 0.002, 0.0019511, 0.0018090, 0.0015878, 0.0013090, None, None, None, 0.00019098]),  # CoCoOp
])
def test_reference_table_cosine_with_constant_warmup(lr, max_epoch, expected):
    lrs = lr_curve(max_epoch, LR=lr, MAX_EPOCH=max_epoch, LR_SCHEDULER="cosine", WARMUP_EPOCH=1,
                   WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5)
    assert len(lrs) == max_epoch
    for got, want in zip(lrs, expected):
        if want is not None:
            assert got == pytest.approx(want, rel=5e-5, abs=0)


def test_gopro_schedule_formula_and_last_epoch():
    lrs = lr_curve(50, LR=0.002, MAX_EPOCH=50, LR_SCHEDULER="cosine", WARMUP_EPOCH=1, WARMUP_TYPE="constant",
                   WARMUP_CONS_LR=1e-5)
    # lr(0) = 1e-5, lr(e) = LR * (1 + cos(pi (e - 1) / T)) / 2: the cosine shifted by one epoch
    expected = [1e-5] + [cosine(0.002, e - 1, 50) for e in range(1, 50)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert lrs[2] == pytest.approx(0.0019980, rel=5e-5)
    assert lrs[-1] == pytest.approx(7.885e-6, rel=5e-4)


def test_cosine_without_warmup():
    lrs = lr_curve(6, LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="cosine")
    assert lrs == pytest.approx([cosine(0.1, e, 6) for e in range(6)], rel=1e-9)


def test_single_step():
    lrs = lr_curve(7, LR=0.1, MAX_EPOCH=7, LR_SCHEDULER="single_step", STEPSIZE=(3,), GAMMA=0.5)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rel=1e-12)
    # an int step size works too; the default (-1,) means "step at MAX_EPOCH", i.e. constant while training
    assert lr_curve(4, LR=0.1, MAX_EPOCH=4, LR_SCHEDULER="single_step", STEPSIZE=2) == pytest.approx(
        [0.1, 0.1, 0.01, 0.01], rel=1e-12)
    assert lr_curve(5, LR=0.1, MAX_EPOCH=5, LR_SCHEDULER="single_step") == [0.1] * 5


def test_multi_step():
    lrs = lr_curve(6, LR=1.0, MAX_EPOCH=6, LR_SCHEDULER="multi_step", STEPSIZE=(2, 4), GAMMA=0.1)
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rel=1e-12)


def test_linear_warmup_then_cosine():
    # epoch 0: WARMUP_MIN_LR; epochs 1..W-1: LR * e / W; then the successor from its own epoch 0
    lrs = lr_curve(6, LR=0.3, MAX_EPOCH=6, LR_SCHEDULER="cosine", WARMUP_EPOCH=3, WARMUP_TYPE="linear",
                   WARMUP_MIN_LR=1e-4)
    expected = [1e-4, 0.1, 0.2, cosine(0.3, 0, 6), cosine(0.3, 1, 6), cosine(0.3, 2, 6)]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_constant_warmup_then_single_step():
    lrs = lr_curve(6, LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="single_step", STEPSIZE=(2,), WARMUP_EPOCH=2,
                   WARMUP_TYPE="constant", WARMUP_CONS_LR=0.001)
    assert lrs == pytest.approx([0.001, 0.001, 0.1, 0.1, 0.01, 0.01], rel=1e-12)


def test_warmup_recount_false_starts_the_successor_at_the_warmup_epoch():
    recount = lr_curve(6, LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="single_step", STEPSIZE=(2,), WARMUP_EPOCH=1,
                       WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5)
    no_recount = lr_curve(6, LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="single_step", STEPSIZE=(2,), WARMUP_EPOCH=1,
                          WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5, WARMUP_RECOUNT=False)
    assert recount == pytest.approx([1e-5, 0.1, 0.1, 0.01, 0.01, 0.001], rel=1e-12)
    assert no_recount == pytest.approx([1e-5, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12)

    # cosine: torch's chained update from LR at the successor's epoch W gives LR (1+cos(e pi/T)) / (1+cos(pi/T))
    t = 5
    lrs = lr_curve(t, LR=0.01, MAX_EPOCH=t, LR_SCHEDULER="cosine", WARMUP_EPOCH=1, WARMUP_TYPE="constant",
                   WARMUP_CONS_LR=1e-5, WARMUP_RECOUNT=False)
    expected = [1e-5] + [0.01 * (1 + math.cos(e * math.pi / t)) / (1 + math.cos(math.pi / t)) for e in range(1, t)]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_wrapper_types():
    _, _, constant = build(optim_cfg(WARMUP_EPOCH=1, WARMUP_TYPE="constant"))
    _, _, linear = build(optim_cfg(WARMUP_EPOCH=1, WARMUP_TYPE="linear"))
    assert isinstance(constant, ConstantWarmupScheduler) and isinstance(linear, LinearWarmupScheduler)
    assert isinstance(constant.successor, torch.optim.lr_scheduler.StepLR)


@pytest.mark.parametrize("overrides", [
    dict(LR_SCHEDULER="nope"),
    dict(LR_SCHEDULER="cosine", WARMUP_EPOCH=1, WARMUP_TYPE="exponential"),
    dict(LR_SCHEDULER="multi_step", STEPSIZE=3),
    dict(LR_SCHEDULER="single_step", STEPSIZE=(2.5,)),
])
def test_bad_settings_are_user_errors(overrides):
    with pytest.raises(UserError):
        build(optim_cfg(**overrides))


@pytest.mark.parametrize("overrides", [
    dict(LR_SCHEDULER="cosine", WARMUP_EPOCH=1, WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5),
    dict(LR_SCHEDULER="cosine", WARMUP_EPOCH=2, WARMUP_TYPE="linear", WARMUP_RECOUNT=False),
    dict(LR_SCHEDULER="multi_step", STEPSIZE=(2, 4), WARMUP_EPOCH=1, WARMUP_TYPE="linear"),
    dict(LR_SCHEDULER="single_step", STEPSIZE=(3,)),
])
@pytest.mark.parametrize("stop_after", [1, 3])
def test_state_dict_round_trip_with_weights_only(overrides, stop_after):
    cfg = optim_cfg(LR=0.05, MAX_EPOCH=7, **overrides)
    total = 7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        straight_param, straight_optimizer, straight_scheduler = build(cfg)
        straight = run_epochs(straight_param, straight_optimizer, straight_scheduler, total)

        param, optimizer, scheduler = build(cfg)
        first = run_epochs(param, optimizer, scheduler, stop_after)
        buffer = io.BytesIO()
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)

        param2, optimizer2, scheduler2 = build(cfg)
        param2.data.copy_(param.data)
        optimizer2.load_state_dict(state["optimizer"])
        scheduler2.load_state_dict(state["scheduler"])
        resumed = run_epochs(param2, optimizer2, scheduler2, total - stop_after)
    assert [str(w.message) for w in caught] == []
    assert first + resumed == straight
    assert scheduler2.state_dict() == straight_scheduler.state_dict()
