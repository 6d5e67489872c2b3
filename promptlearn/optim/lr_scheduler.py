"""``build_lr_scheduler``: single_step, multi_step or cosine, stepped once per epoch, optionally preceded by a
constant or linear warmup (Dassl's OPTIM keys and LR values; written for current PyTorch, whose schedulers no
longer take ``verbose``, with a state dict that loads under ``torch.load(weights_only=True)``)."""
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR, StepLR

from ..errors import UserError

AVAI_SCHEDS = ["single_step", "multi_step", "cosine"]


class _WarmupThen(LRScheduler):
    """The LRs of ``warmup_lrs()`` for the first ``warmup_epoch`` epochs, then those of ``successor``, which is
    stepped from then on (it was built on the same optimizer and has not been stepped before)."""

    def __init__(self, optimizer, successor, warmup_epoch: int, last_epoch: int = -1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def warmup_lrs(self) -> list:
        raise NotImplementedError

    def get_lr(self):
        return self.warmup_lrs() if self.last_epoch < self.warmup_epoch else self.successor.get_last_lr()

    def step(self, epoch=None):
        if self.last_epoch < self.warmup_epoch:
            super().step()  # the epoch that ends the warmup takes its LRs from the successor (get_lr)
            return
        self.successor.step()
        self._last_lr = self.successor.get_last_lr()

    def state_dict(self) -> dict:
        own = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "successor")}
        return {**own, "successor": self.successor.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        self.successor.load_state_dict(state.pop("successor"))
        self.__dict__.update(state)


class ConstantWarmupScheduler(_WarmupThen):
    """Warmup at the fixed LR ``cons_lr``."""

    def __init__(self, optimizer, successor, warmup_epoch: int, cons_lr: float, last_epoch: int = -1):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def warmup_lrs(self) -> list:
        return [self.cons_lr] * len(self.base_lrs)


class LinearWarmupScheduler(_WarmupThen):
    """Warmup from ``min_lr`` (epoch 0), then base_lr * epoch / warmup_epoch."""

    def __init__(self, optimizer, successor, warmup_epoch: int, min_lr: float, last_epoch: int = -1):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def warmup_lrs(self) -> list:
        if self.last_epoch == 0:
            return [self.min_lr] * len(self.base_lrs)
        return [base * self.last_epoch / self.warmup_epoch for base in self.base_lrs]


WARMUPS = {"constant": (ConstantWarmupScheduler, "WARMUP_CONS_LR"), "linear": (LinearWarmupScheduler, "WARMUP_MIN_LR")}


def _single_step(optimizer, optim_cfg):
    stepsize = optim_cfg.STEPSIZE
    stepsize = stepsize[-1] if isinstance(stepsize, (list, tuple)) else stepsize
    if not isinstance(stepsize, int):
        raise UserError(f"OPTIM.STEPSIZE must be an integer for single_step, got {stepsize!r}")
    return StepLR(optimizer, step_size=stepsize if stepsize > 0 else optim_cfg.MAX_EPOCH, gamma=optim_cfg.GAMMA)


def _multi_step(optimizer, optim_cfg):
    if not isinstance(optim_cfg.STEPSIZE, (list, tuple)):
        raise UserError(f"OPTIM.STEPSIZE must be a list of epochs for multi_step, got {optim_cfg.STEPSIZE!r}")
    return MultiStepLR(optimizer, milestones=list(optim_cfg.STEPSIZE), gamma=optim_cfg.GAMMA)


def _cosine(optimizer, optim_cfg):
    return CosineAnnealingLR(optimizer, float(optim_cfg.MAX_EPOCH))


SCHEDULES = {"single_step": _single_step, "multi_step": _multi_step, "cosine": _cosine}


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg) -> LRScheduler:
    """OPTIM.LR_SCHEDULER, behind OPTIM.WARMUP_EPOCH epochs of OPTIM.WARMUP_TYPE warmup when that is > 0.
    WARMUP_RECOUNT False starts the schedule as if it had already run through the warmup epochs."""
    if optim_cfg.LR_SCHEDULER not in SCHEDULES:
        raise UserError(f'OPTIM.LR_SCHEDULER must be one of {AVAI_SCHEDS}, got "{optim_cfg.LR_SCHEDULER}"')
    schedule = SCHEDULES[optim_cfg.LR_SCHEDULER](optimizer, optim_cfg)
    if optim_cfg.WARMUP_EPOCH <= 0:
        return schedule
    if optim_cfg.WARMUP_TYPE not in WARMUPS:
        raise UserError(f'OPTIM.WARMUP_TYPE must be "constant" or "linear", got "{optim_cfg.WARMUP_TYPE}"')
    if not optim_cfg.WARMUP_RECOUNT:
        schedule.last_epoch = optim_cfg.WARMUP_EPOCH
    warmup, lr_key = WARMUPS[optim_cfg.WARMUP_TYPE]
    return warmup(optimizer, schedule, optim_cfg.WARMUP_EPOCH, optim_cfg[lr_key])
