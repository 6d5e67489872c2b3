"""The trainer registry (``TRAINER_REGISTRY``) and ``build_trainer(cfg)``."""
import logging

from ..utils.registry import Registry, check_availability

logger = logging.getLogger(__name__)

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    avai_trainers = TRAINER_REGISTRY.registered_names()
    check_availability(cfg.TRAINER.NAME, avai_trainers)
    if cfg.VERBOSE:
        logger.info(f"Loading trainer: {cfg.TRAINER.NAME}")
    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)(cfg)


def extend_cfg_for_trainers(cfg) -> None:
    """Add every registered trainer's own config keys (``TRAINER.<X>.*``), as CoOp's ``extend_cfg`` does,
    so that any method's YAML merges whatever ``--trainer`` is."""
    for name in avai_sorted():
        trainer = TRAINER_REGISTRY.get(name)
        extend = getattr(trainer, "extend_cfg", None)
        if extend is not None:
            extend(cfg)


def avai_sorted() -> list:
    return sorted(TRAINER_REGISTRY.registered_names())
