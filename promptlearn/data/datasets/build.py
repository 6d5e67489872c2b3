"""The dataset registry (``DATASET_REGISTRY``) and ``build_dataset(cfg)``."""
from ...utils.registry import Registry

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    return DATASET_REGISTRY.build(cfg.DATASET.NAME, cfg, verbose=cfg.VERBOSE)
