"""Precision modes of the prompt trainers (``TRAINER.<X>.PREC``): fp16, fp32 or amp.

fp16: CLIP keeps its fp16 weights and the learnable parameters are fp16 too (the reference trainers'
default); fp32: everything fp32; amp: fp32 weights with autocast and a gradient scaler. fp16 and amp
need CUDA: on a CPU they fall back to fp32 with a warning.
"""
import logging

import torch

from ..errors import UserError

logger = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32", "amp")


def resolve_precision(prec: str, device: torch.device, key: str = "PREC") -> str:
    if prec not in PRECISIONS:
        raise UserError(f'{key} must be one of {PRECISIONS}, got "{prec}"')
    if prec != "fp32" and device.type != "cuda":
        logger.warning(f"WARNING: {key}={prec} needs a CUDA device; running in fp32 on {device.type}")
        return "fp32"
    return prec


def apply_precision(clip_model: torch.nn.Module, prec: str) -> torch.nn.Module:
    """fp32 and amp run on fp32 weights; fp16 keeps CLIP's fp16 weights."""
    if prec in ("fp32", "amp"):
        clip_model.float()
    return clip_model
