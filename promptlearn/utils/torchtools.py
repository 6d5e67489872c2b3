"""Checkpoint files in Dassl's layout, written atomically and loaded with ``weights_only=True``.

Layout: ``<dir>/<name>/model.pth.tar-<epoch>`` plus ``<dir>/<name>/checkpoint``, a text file naming the newest
of those: the state a resumed run continues from. ``model-best.pth.tar`` (the best epoch on the validation
split) and any other named file are written beside them and never become the resume point. The state is a
dict of tensors and plain Python values only, so it loads under PyTorch's safe unpickler.
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

#: the text file naming the checkpoint a resumed run continues from
RESUME_POINTER = "checkpoint"
BEST_FILE = "model-best.pth.tar"


def epoch_file(epoch: int) -> str:
    return f"model.pth.tar-{epoch}"


def _strip_module_prefix(state_dict: dict) -> OrderedDict:
    """Keys without the ``module.`` that DataParallel / DistributedDataParallel wrappers put in front."""
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def save_checkpoint(state: dict, save_dir: str, is_best: bool = False, remove_module_from_keys: bool = True,
                    model_name: str = "") -> str:
    """Write ``state`` (its ``epoch`` names the file) and return the path.

    Without ``model_name`` the file is ``model.pth.tar-<epoch>`` and becomes the resume point; ``is_best``
    also copies it to ``model-best.pth.tar``. With ``model_name`` the state goes to that file only.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state = {**state, "state_dict": _strip_module_prefix(state["state_dict"])}
    fpath = os.path.join(save_dir, model_name or epoch_file(state["epoch"]))
    payload = io.BytesIO()
    torch.save(state, payload)
    with atomic_write(fpath, "wb") as f:
        f.write(payload.getvalue())
    logger.info(f"Saved {fpath}")
    if not model_name:
        with atomic_write(os.path.join(save_dir, RESUME_POINTER)) as f:
            f.write(os.path.basename(fpath) + "\n")
        if is_best:
            best = os.path.join(save_dir, BEST_FILE)
            with open(fpath, "rb") as source, atomic_write(best, "wb") as f:
                shutil.copyfileobj(source, f)
            logger.info(f"Saved {best} (a copy of {os.path.basename(fpath)})")
    return fpath


def read_resume_pointer(model_dir: str):
    """The name written in ``model_dir/checkpoint`` ("" for an empty file), or None when there is no such file."""
    pointer = os.path.join(model_dir, RESUME_POINTER)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, errors="replace") as f:
        return f.readline().strip()


def resume_point(model_dir: str):
    """The checkpoint named by ``model_dir/checkpoint``, or None when there is none."""
    name = read_resume_pointer(model_dir)
    return os.path.join(model_dir, name) if name else None


def resume_file(model_dir: str):
    """The checkpoint ``model_dir/checkpoint`` names; None when the folder has no checkpoint at all; a UserError
    when the pointer is missing beside checkpoints, empty, or names a file that is not there (a run must not
    then train from scratch over the files that are there)."""
    pointer, saved = os.path.join(model_dir, RESUME_POINTER), epoch_files(model_dir)
    name = read_resume_pointer(model_dir)
    newest = f"the newest here is {saved[-1]}" if saved else "there is none here"
    fix = "write the name of the checkpoint to resume from into it, or add --start-over to train anew"
    if name is None:
        if not saved:
            return None
        raise UserError(f"{model_dir} has checkpoints ({', '.join(saved)}) but no '{RESUME_POINTER}' file naming "
                        f"the one to resume from: write its name ({saved[-1]} is the newest) into {pointer}, or add "
                        "--start-over to train anew")
    if not name:
        raise UserError(f"{pointer} is empty, so the checkpoint to resume from is unknown ({newest}): {fix}")
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        raise UserError(f"{pointer} names {name}, which is not in {model_dir} ({newest}): {fix}")
    return path


def epoch_files(model_dir: str) -> list:
    """The ``model.pth.tar-<epoch>`` files in ``model_dir``, oldest epoch first."""
    if not os.path.isdir(model_dir):
        return []
    found = []
    for name in os.listdir(model_dir):
        prefix, _, number = name.rpartition("-")
        if prefix == "model.pth.tar" and number.isdigit():
            found.append((int(number), name))
    return [name for _, name in sorted(found)]


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


def load_pretrained_weights(model: nn.Module, weight_path: str) -> None:
    """Copy into ``model`` the tensors of ``weight_path`` whose names and shapes fit it; report the others."""
    checkpoint = load_checkpoint(weight_path)
    offered = _strip_module_prefix(checkpoint.get("state_dict", checkpoint))
    own = model.state_dict()
    fitting = {k: v for k, v in offered.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise UserError(f'no weights in "{weight_path}" match the model (names or shapes differ)')
    model.load_state_dict(fitting, strict=False)
    logger.info(f'Initialized {len(fitting)} tensors of the model from "{weight_path}"')
    left_out = [k for k in offered if k not in fitting]
    if left_out:
        logger.info(f"Not loaded (no tensor of that name and shape in the model): {left_out}")


def count_num_param(model: nn.Module = None, params=None) -> int:
    """Number of elements of ``model``'s parameters, or of the tensors in ``params``."""
    tensors = model.parameters() if model is not None else params
    return sum(t.numel() for t in tensors)
