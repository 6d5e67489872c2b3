"""The evaluator registry (``EVALUATOR_REGISTRY``) and ``build_evaluator(cfg)``."""
from ..utils.registry import Registry

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    return EVALUATOR_REGISTRY.build(cfg.TEST.EVALUATOR, cfg, verbose=cfg.VERBOSE, **kwargs)
