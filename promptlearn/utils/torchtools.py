"""Checkpoint files in Dassl's layout, written atomically and loaded with ``weights_only=True``.

Layout: ``<dir>/<name>/model.pth.tar-<epoch>`` (or ``model-best.pth.tar``) plus ``<dir>/<name>/checkpoint``,
a text file naming the latest file. The state is a dict of tensors and plain Python values only, so it
loads under PyTorch's safe unpickler.
"""
import io
import logging
import os
import pickle
import shutil
from collections import OrderedDict

import torch
import torch.nn as nn

from ..errors import UserError
from .tools import atomic_write, mkdir_if_missing

logger = logging.getLogger(__name__)


def _strip_module_prefix(state_dict: dict) -> OrderedDict:
    return OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def save_checkpoint(state: dict, save_dir: str, is_best: bool = False, remove_module_from_keys: bool = True,
                    model_name: str = "") -> str:
    """Save ``state`` to ``save_dir/model.pth.tar-<epoch>`` (or ``model_name``) and update ``checkpoint``."""
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state = dict(state)
        state["state_dict"] = _strip_module_prefix(state["state_dict"])
    if not model_name:
        model_name = "model.pth.tar-" + str(state["epoch"])
    fpath = os.path.join(save_dir, model_name)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_write(fpath, "wb") as f:
        f.write(buffer.getvalue())
    logger.info(f"Checkpoint saved to {fpath}")
    with atomic_write(os.path.join(save_dir, "checkpoint")) as f:
        f.write(f"{os.path.basename(fpath)}\n")
    if is_best:
        best_fpath = os.path.join(os.path.dirname(fpath), "model-best.pth.tar")
        shutil.copy(fpath, best_fpath + ".tmp")
        os.replace(best_fpath + ".tmp", best_fpath)
        logger.info(f'Best checkpoint saved to "{best_fpath}"')
    return fpath


def load_checkpoint(fpath: str, trusted: bool = False) -> dict:
    """Load a checkpoint on the CPU with PyTorch's safe (weights-only) unpickler.

    Checkpoints written by other codebases may hold pickled objects the safe loader refuses; pass
    ``trusted=True`` only for files from a source you trust.
    """
    if not fpath:
        raise UserError("checkpoint path is empty")
    if not os.path.exists(fpath):
        raise UserError(f'checkpoint not found at "{fpath}". Check --model-dir and --load-epoch '
                        "(the epoch number is the N in model.pth.tar-N).")
    try:
        return torch.load(fpath, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise UserError(f"{fpath} holds objects the safe loader refuses ({str(err).splitlines()[0]}). "
                        "If you trust the file, load it with load_checkpoint(path, trusted=True).") from None
    except (RuntimeError, EOFError) as err:
        raise UserError(f"cannot read checkpoint {fpath} ({err}); the file is truncated or corrupt.") from None


def resume_from_checkpoint(fdir: str, model: nn.Module, optimizer=None, scheduler=None) -> int:
    """Load the latest checkpoint named in ``fdir/checkpoint``; return the epoch to start from."""
    with open(os.path.join(fdir, "checkpoint")) as f:
        model_name = f.readlines()[0].strip("\n")
    fpath = os.path.join(fdir, model_name)
    logger.info(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    logger.info("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        logger.info("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        logger.info("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    logger.info(f"Previous epoch: {start_epoch}")
    return start_epoch


def load_pretrained_weights(model: nn.Module, weight_path: str) -> None:
    """Load the tensors of ``weight_path`` whose names and shapes match ``model``; report the rest."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model_dict = model.state_dict()
    matched, discarded = OrderedDict(), []
    for k, v in _strip_module_prefix(state_dict).items():
        if k in model_dict and model_dict[k].size() == v.size():
            matched[k] = v
        else:
            discarded.append(k)
    if not matched:
        raise UserError(f'no weights in "{weight_path}" match the model (names or shapes differ)')
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    logger.info(f'Successfully loaded pretrained weights from "{weight_path}"')
    if discarded:
        logger.info(f"Layers discarded due to unmatched keys or size: {discarded}")


def count_num_param(model: nn.Module = None, params=None) -> int:
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in params)
