"""Precision modes of the prompt trainers (``TRAINER.<X>.PREC``): fp16, fp32 or amp.

fp16: CLIP keeps its fp16 weights and the learnable parameters are fp16 too (the reference trainers'
default); fp32: everything fp32; amp: fp32 weights with autocast -- to fp16 with a gradient scaler on
CUDA, to bfloat16 (no scaler needed: bfloat16 has fp32's range) on a CPU when ``MODEL.CPU_AMP`` opts in
and the CPU has bfloat16 instructions. Otherwise fp16 and amp need CUDA: on a CPU they fall back to fp32
with a warning.
"""
import contextlib
import logging

import torch

from ..errors import UserError

logger = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32", "amp")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(prec: str, device: torch.device, key: str = "PREC", cpu_amp: bool = False) -> str:
    """The precision a run uses: ``prec``, or fp32 where the device cannot run it."""
    if prec not in PRECISIONS:
        raise UserError(f'{key} must be one of {PRECISIONS}, got "{prec}"')
    if prec == "fp32" or device.type == "cuda":
        return prec
    if prec == "amp" and cpu_amp:
        if cpu_has_bf16():
            return prec
        logger.warning(f"WARNING: {key}=amp with MODEL.CPU_AMP: this CPU has no bfloat16 instructions "
                       "(AVX512-BF16 or AMX), where bfloat16 would be slower than fp32; running in fp32")
        return "fp32"
    hint = " (or set MODEL.CPU_AMP for bfloat16 autocast on a CPU)" if prec == "amp" else ""
    logger.warning(f"WARNING: {key}={prec} needs a CUDA device{hint}; running in fp32 on {device.type}")
    return "fp32"


def autocast(prec: str, device: torch.device):
    """The autocast context of a resolved precision: fp16 on CUDA, bfloat16 on a CPU, none but for amp."""
    if prec != "amp":
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def grad_scaler(prec: str, device: torch.device):
    """fp16 autocast needs loss scaling (CUDA amp); bfloat16 does not."""
    return torch.amp.GradScaler("cuda") if prec == "amp" and device.type == "cuda" else None


def apply_precision(clip_model: torch.nn.Module, prec: str) -> torch.nn.Module:
    """fp32 and amp run on fp32 weights; fp16 keeps CLIP's fp16 weights."""
    if prec in ("fp32", "amp"):
        clip_model.float()
    return clip_model
