"""The dataset registry (``DATASET_REGISTRY``) and ``build_dataset(cfg)``."""
import logging

from ...utils.registry import Registry, check_availability

logger = logging.getLogger(__name__)

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    avai_datasets = DATASET_REGISTRY.registered_names()
    check_availability(cfg.DATASET.NAME, avai_datasets)
    if cfg.VERBOSE:
        logger.info(f"Loading dataset: {cfg.DATASET.NAME}")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
