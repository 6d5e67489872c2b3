"""Utilities with Dassl's public names (``dassl.utils``)."""
from .distributed import get_rank, get_world_size, is_main_process
from .logger import setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry, check_availability
from .tools import (
    atomic_write,
    collect_env_info,
    listdir_nohidden,
    mkdir_if_missing,
    read_image,
    read_json,
    set_random_seed,
    write_json,
)
from .torchtools import count_num_param, load_checkpoint, load_pretrained_weights, save_checkpoint

__all__ = [
    "AverageMeter", "MetricMeter", "Registry", "atomic_write", "check_availability", "collect_env_info",
    "count_num_param", "get_rank", "get_world_size", "is_main_process", "listdir_nohidden", "load_checkpoint",
    "load_pretrained_weights", "mkdir_if_missing", "read_image", "read_json", "save_checkpoint", "set_random_seed",
    "setup_logger", "write_json",
]
