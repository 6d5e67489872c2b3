"""Multi-process runs under ``torchrun`` (nccl on GPU, gloo on CPU): the process group, the collectives the engine
needs, cross-rank BatchNorm and per-rank random streams. Everything is a no-op in a single process.

Gradients are averaged by ``torch.nn.parallel.DistributedDataParallel`` (see ``engine/trainer.py``); what is
here is what DDP does not do: gathering features with their gradients (GOPro's contrastive loss), normalizing
a batch with the statistics of the whole global batch, and giving each rank its own augmentation stream.
"""
import contextlib
import os
import random
import signal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class LostRankError(RuntimeError):
    """This rank lost contact with another one (it stopped or was killed); the run cannot go on."""


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def init_distributed_from_env(use_cuda: bool) -> bool:
    """Join the process group described by torchrun's environment variables; False when not launched so."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or "RANK" not in os.environ:
        return False
    if is_distributed():
        return True
    backend = "nccl" if use_cuda and torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    _stop_cleanly_on_sigterm()
    return True


def _stop_cleanly_on_sigterm() -> None:
    """torchrun stops the other ranks with SIGTERM when one fails: end with a message instead of silently."""

    def stop(signum, frame):
        raise LostRankError(f"rank {get_rank()} was stopped by torchrun (SIGTERM), which does so when another rank "
                            "fails; that rank's error, and torchrun's summary of it, say why")

    signal.signal(signal.SIGTERM, stop)


#: what the backends' errors say when the other end of a collective is gone
_LOST_PEER_SIGNS = ("connection reset by peer", "connection closed by peer", "broken pipe", "connection refused",
                    "communicator was aborted", "nccl error", "socket timeout")


def _gist(text: str) -> str:
    """The backend's message without its source location and advice: "Read error [host]:port: Connection reset"."""
    line = text.splitlines()[0] if text else "no message"
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    return line.split(". ")[0].rstrip(".")


@contextlib.contextmanager
def reporting_lost_ranks():
    """In a distributed run, turn the backend's error for a collective whose peer is gone (gloo raises a plain
    RuntimeError) into a LostRankError that says so in one line."""
    try:
        yield
    except RuntimeError as err:
        text = str(err).strip()
        lost = isinstance(err, dist.DistError) or any(sign in text.lower() for sign in _LOST_PEER_SIGNS)
        if not is_distributed() or not lost or isinstance(err, LostRankError):
            raise
        raise LostRankError(f"rank {get_rank()} of {get_world_size()} lost contact with the others ({_gist(text)}): "
                            "another rank stopped or was killed; its own error, or torchrun's summary, says "
                            "why") from None


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_from_main(obj):
    """Rank 0's ``obj`` on every rank (any picklable value; ``obj`` itself in one process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shared_random_seed() -> int:
    """A random seed drawn on rank 0 and sent to every rank."""
    return broadcast_from_main(random.SystemRandom().randrange(2**31))


# --------------------------------------------------------------------------------- which rank reports a failure

#: the key, in the process group's store, that counts the ranks that stopped on an error
_FAILURES_KEY = "promptlearn/failed_ranks"


def _group_store():
    """The store the process group was set up with (under torchrun: the launcher's, which outlives the ranks)."""
    if not is_distributed():
        return None
    try:
        return dist.distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):
        return None


def claim_failure() -> bool:
    """Count this rank among the failed ones; True when it is the first (the one whose error is printed: the
    others, stopping on the same error or because of it, stay quiet). True in one process."""
    store = _group_store()
    if store is None:
        return True
    try:
        return store.add(_FAILURES_KEY, 1) == 1
    except Exception:  # the store is gone with the process that held it: say it, in case nobody else can
        return True


def another_rank_failed() -> bool:
    """Whether a rank has already stopped on an error of its own (which it reported)."""
    store = _group_store()
    if store is None:
        return False
    try:
        return bool(store.check([_FAILURES_KEY]))
    except Exception:
        return False


def true_on_all_ranks(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank (one all-reduce of a single number)."""
    if not is_distributed():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def all_gather_object(obj) -> list:
    """``obj`` of every rank, in rank order (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------------------ gathering with gradients

class _GatherWithGrad(torch.autograd.Function):
    """Every rank's tensor, stacked in rank order. Backward: every rank's gradient for each slot is summed and
    each rank keeps the sum for its own slot (only all_gather and all_reduce, which every backend has)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor):
        slots = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(slots, tensor.contiguous())
        return torch.stack(slots)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` of every rank along dim 0, keeping the gradient path to every rank's input.

    Every rank must pass the same shape. The gradient each rank receives for its input is the sum over ranks
    of the gradients of their losses; DistributedDataParallel's average of the parameter gradients then gives
    the gradient of the mean loss, as in one process on the concatenated batch.
    """
    if get_world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor).flatten(0, 1)


# ----------------------------------------------------------------------------------------- cross-rank BatchNorm

def _global_batch_statistics(x: torch.Tensor, dims: list):
    """Mean, biased and unbiased variance per channel over the batch of every rank (autograd flows to all ranks).

    Each rank contributes its count, mean and sum of squared deviations (M2); they are pooled exactly:
    mean = sum(n_r mean_r) / N, M2 = sum(M2_r) + sum(n_r (mean_r - mean)^2).
    """
    count = x.numel() // x.shape[1]
    mean = x.mean(dim=dims)
    m2 = (x - mean.reshape(1, -1, *[1] * (x.dim() - 2))).square().sum(dim=dims)
    own = torch.cat([mean.new_tensor([float(count)]), mean, m2])
    every = all_gather_with_grad(own.unsqueeze(0))  # (W, 1 + 2C)
    counts, means, m2s = every[:, :1], every[:, 1:1 + mean.numel()], every[:, 1 + mean.numel():]
    total = counts.sum()
    pooled_mean = (counts * means).sum(0) / total
    pooled_m2 = m2s.sum(0) + (counts * (means - pooled_mean).square()).sum(0)
    return pooled_mean, pooled_m2 / total, pooled_m2 / (total - 1).clamp(min=1)


def batch_norm(layer: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, update_stats: bool = True) -> torch.Tensor:
    """``layer``'s BatchNorm of ``x`` (N, C, ...), with the statistics of the global batch in a distributed run.

    Evaluation (``layer.eval()``): the running statistics. Training in one process: exactly what ``layer(x)``
    computes or, with ``update_stats=False``, the batch's statistics without folding them into the running
    ones. Training under torchrun: the mean and variance of the batches of all ranks together (pooled exactly,
    with gradients reaching every rank's inputs), so that N ranks normalize as one process does on the
    concatenated batch, and their running statistics stay equal to each other and to that process's.
    """
    batch_norm_base = nn.modules.batchnorm._BatchNorm.forward
    if not layer.training or (update_stats and get_world_size() == 1):
        return batch_norm_base(layer, x)
    if get_world_size() == 1:
        return F.batch_norm(x, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)
    shape = (1, -1, *[1] * (x.dim() - 2))
    values = x.float()
    mean, var, unbiased_var = _global_batch_statistics(values, [0, *range(2, x.dim())])
    if update_stats and layer.track_running_stats:
        layer.num_batches_tracked.add_(1)
        momentum = layer.momentum if layer.momentum is not None else 1.0 / float(layer.num_batches_tracked)
        with torch.no_grad():
            layer.running_mean.lerp_(mean.detach().to(layer.running_mean.dtype), momentum)
            layer.running_var.lerp_(unbiased_var.detach().to(layer.running_var.dtype), momentum)
    out = (values - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + layer.eps)
    if layer.affine:
        out = out * layer.weight.float().reshape(shape) + layer.bias.float().reshape(shape)
    return out.to(x.dtype)


class CrossRankBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm layer of any dimension (1d/2d/3d) whose forward is :func:`batch_norm`."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"BatchNorm expects (N, C, ...) inputs, got {x.dim()} dimension(s)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        return batch_norm(self, x)


def use_cross_rank_batchnorm(module: nn.Module) -> int:
    """Replace every BatchNorm layer inside ``module`` by a CrossRankBatchNorm holding the same parameter and
    buffer tensors (an optimizer built before keeps updating them); the number of layers replaced."""
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, CrossRankBatchNorm):
                layer = CrossRankBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                           child.track_running_stats)
                for key in ("weight", "bias"):
                    setattr(layer, key, getattr(child, key))
                for key in ("running_mean", "running_var", "num_batches_tracked"):
                    layer.register_buffer(key, getattr(child, key))
                layer.train(child.training)
                setattr(parent, name, layer)
                replaced += 1
    return replaced


# ------------------------------------------------------------------------------------- per-rank random streams

def rank_seed(base_seed: int, rank: int, epoch: int) -> int:
    """A seed for the random streams of ``rank`` in ``epoch``, derived from the run's seed (different for every
    rank and epoch, the same whenever the run is repeated or resumed)."""
    return int(np.random.SeedSequence([base_seed, rank, epoch]).generate_state(1)[0])
