"""Utilities with Dassl's public names (``dassl.utils``)."""
from .distributed import get_rank, get_world_size, is_main_process
from .logger import setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry, check_availability
from .tools import (
    atomic_write,
    check_isfile,
    collect_env_info,
    listdir_nohidden,
    mkdir_if_missing,
    read_image,
    read_json,
    set_random_seed,
    tolist_if_not,
    write_json,
)
from .torchtools import (
    count_num_param,
    load_checkpoint,
    load_pretrained_weights,
    resume_from_checkpoint,
    save_checkpoint,
)

__all__ = [
    "AverageMeter", "MetricMeter", "Registry", "atomic_write", "check_availability", "check_isfile",
    "collect_env_info", "count_num_param", "get_rank", "get_world_size", "is_main_process",
    "listdir_nohidden", "load_checkpoint", "load_pretrained_weights", "mkdir_if_missing", "read_image",
    "read_json", "resume_from_checkpoint", "save_checkpoint", "set_random_seed", "setup_logger",
    "tolist_if_not", "write_json",
]
