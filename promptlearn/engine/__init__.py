"""Trainers (Dassl's ``dassl.engine``) and the shared base of the CLIP prompt trainers."""
from .build import TRAINER_REGISTRY, build_trainer, extend_cfg_for_trainers
from .clip_trainer import CLIPTrainer
from .trainer import SimpleTrainer, TrainerBase, TrainerX

__all__ = ["CLIPTrainer", "SimpleTrainer", "TRAINER_REGISTRY", "TrainerBase", "TrainerX", "build_trainer",
           "extend_cfg_for_trainers"]
