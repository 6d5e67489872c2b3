"""The trainer registry (``TRAINER_REGISTRY``), ``build_trainer(cfg)`` and the trainers' config keys."""
from ..utils.registry import Registry

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    return TRAINER_REGISTRY.build(cfg.TRAINER.NAME, cfg, verbose=cfg.VERBOSE)


def extend_cfg_for_trainers(cfg) -> None:
    """Add every registered trainer's own config keys (``TRAINER.<X>.*``), as CoOp's ``extend_cfg`` does,
    so that any method's YAML merges whatever ``--trainer`` is."""
    for name in sorted(TRAINER_REGISTRY.registered_names()):
        extend = getattr(TRAINER_REGISTRY.get(name), "extend_cfg", None)
        if extend is not None:
            extend(cfg)
