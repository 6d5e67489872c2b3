"""Process-group helpers for ``torchrun`` runs (nccl on GPU, gloo on CPU); no-ops in a single process."""
import itertools
import os
import random

import torch
import torch.distributed as dist
import torch.nn as nn


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
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    if is_distributed():
        return True
    backend = "nccl" if use_cuda and torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shared_random_seed() -> int:
    """A random seed drawn on rank 0 and sent to every rank."""
    seed = [random.SystemRandom().randrange(2**31)]
    if is_distributed():
        dist.broadcast_object_list(seed, src=0)
    return seed[0]


def true_on_all_ranks(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank (one all-reduce of a single number)."""
    if not is_distributed():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Give every rank the parameters and buffers of rank ``src`` (what DDP does when it wraps a model)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            dist.broadcast(tensor.data, src)


def average_running_stats(module: nn.Module) -> None:
    """Average the running mean and variance of every normalization layer (BatchNorm) over ranks.

    Each rank's layers see only its own batches; after this, evaluation and checkpoints use the same
    statistics on every rank.
    """
    if not is_distributed():
        return
    world = get_world_size()
    with torch.no_grad():
        for layer in module.modules():
            for name in ("running_mean", "running_var"):
                stat = getattr(layer, name, None)
                if isinstance(stat, torch.Tensor):
                    dist.all_reduce(stat)
                    stat /= world


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient for each slot and returns this rank's slot
    (SLIP's ``GatherLayer``); uses only all_gather and all_reduce, which every backend has."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor):
        gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, tensor.contiguous())
        return tuple(gathered)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        stacked = torch.stack(grads)
        dist.all_reduce(stacked)
        return stacked[dist.get_rank()]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, keeping the gradient path to every rank's input.

    Every rank must pass the same shape. The gradient each rank receives for its input is the sum over
    ranks of the gradients of their losses; averaging the parameter gradients over ranks afterwards
    gives the gradient of the mean loss, as in a single process on the concatenated batch.
    """
    if not is_distributed() or get_world_size() == 1:
        return tensor
    return torch.cat(_GatherWithGrad.apply(tensor), dim=0)


def all_gather_object(obj) -> list:
    if not is_distributed():
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out
