"""``CLIPTrainer``: what every CLIP prompt trainer shares, written once.

Loading CLIP and applying the precision mode, freezing everything but the method's learnable parts,
registering them (optimizer, scheduler, checkpoint folder), the training step (plain or amp with a
gradient scaler, NaN check, per-epoch LR step), evaluation with the class prompts encoded once, and
checkpoint loading that rebuilds the class-name embeddings for the current dataset.

A method subclass sets ``CFG_NODE`` (its ``TRAINER.<NODE>`` config node) and ``MODEL_NAME`` (the
checkpoint folder), adds its keys in ``extend_cfg`` and builds its ``PromptedCLIP`` in ``build_custom_clip``.
"""
import logging

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..metrics import compute_accuracy
from ..modeling.backbones import get_backbone_spec, load_clip
from ..modeling.precision import PRECISIONS, apply_precision, autocast, grad_scaler, resolve_precision
from ..optim import build_lr_scheduler, build_optimizer
from ..utils.torchtools import count_num_param, load_pretrained_weights
from .trainer import TrainerX

logger = logging.getLogger(__name__)

#: buffers rebuilt from the current dataset's class names, never loaded from a checkpoint
CLASS_NAME_BUFFERS = ("token_prefix", "token_suffix")


class CLIPTrainer(TrainerX):
    CFG_NODE = ""
    MODEL_NAME = "prompt_learner"

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.CFG_NODE]

    def check_cfg(self, cfg) -> None:
        if self.CFG_NODE:
            prec = cfg.TRAINER[self.CFG_NODE].PREC
            if prec not in PRECISIONS:
                raise UserError(f'TRAINER.{self.CFG_NODE}.PREC must be one of {PRECISIONS}, got "{prec}"')

    def requested_precision(self) -> str:
        return self.method_cfg.PREC

    def build_custom_clip(self, clip_model, classnames):
        raise NotImplementedError

    def build_model(self) -> None:
        cfg = self.cfg
        spec = get_backbone_spec(cfg.MODEL.BACKBONE.NAME)
        if tuple(cfg.INPUT.SIZE) != (spec.input_resolution, spec.input_resolution):
            raise UserError(f"INPUT.SIZE {tuple(cfg.INPUT.SIZE)} does not match the input resolution of "
                            f"{spec.name} ({spec.input_resolution}); set INPUT.SIZE "
                            f"({spec.input_resolution}, {spec.input_resolution}).")
        key = f"TRAINER.{self.CFG_NODE}.PREC" if self.CFG_NODE else "PREC"
        self.prec = resolve_precision(self.requested_precision(), self.device, key, cfg.MODEL.CPU_AMP)
        classnames = self.dm.dataset.classnames
        logger.info(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = apply_precision(load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PATH), self.prec)

        logger.info(f"Building custom CLIP ({self.__class__.__name__})")
        self.model = self.build_custom_clip(clip_model, classnames)
        self.model.text_encoder.recompute_batch = cfg.MODEL.TEXT_RECOMPUTE_BATCH
        learner = self.model.learnable_module()
        self.model.requires_grad_(False)
        if learner is not None:
            learner.requires_grad_(True)
            enabled = sorted(name for name, p in self.model.named_parameters() if p.requires_grad)
            logger.info(f"Parameters to be updated: {enabled}")
            logger.info(f"# learnable params: {count_num_param(params=[p for p in learner.parameters()]):,}")
            if cfg.MODEL.INIT_WEIGHTS:
                load_pretrained_weights(learner, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        self.learner = learner
        if learner is not None:
            optim = build_optimizer(learner, cfg.OPTIM)
            sched = build_lr_scheduler(optim, cfg.OPTIM)
            self.register_model(self.MODEL_NAME, learner, optim, sched)
        self.scaler = grad_scaler(self.prec, self.device)

    def autocast(self):
        return autocast(self.prec, self.device)

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def compute_loss(self, batch, image, label):
        """Default objective: cross-entropy on the logits. Returns (loss, summary dict)."""
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        return loss, {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}

    def forward_backward(self, batch) -> dict:
        image, label = self.parse_batch_train(batch)
        with self.autocast():
            # under torchrun, through DistributedDataParallel (its backward averages the gradients over ranks)
            loss, summary = self.training_forward(self.compute_loss, batch, image, label)
        self.optimize(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    def optimize(self, loss: torch.Tensor) -> None:
        """Backward and step: plain, or (amp) through the gradient scaler, which skips steps with inf gradients."""
        self.model_zero_grad()
        if self.scaler is None:
            self.model_backward(loss)
            self.model_update()
            return
        self.model_backward(self.scaler.scale(loss))
        for optim in self._with(self._optims):
            self.scaler.step(optim)
        self.scaler.update()

    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model(input).float()

    def before_test(self) -> None:
        with self.autocast():
            self.model.prepare_inference()

    def after_test(self) -> None:
        self.model.clear_cache()

    def train(self) -> None:
        if self.learner is None:
            raise UserError(f"{self.cfg.TRAINER.NAME} has nothing to train; run it with --eval-only")
        super().train()

    def filter_loaded_state(self, name: str, state_dict: dict) -> dict:
        """Drop the class-name embeddings: they are rebuilt for the current dataset (and its class count)."""
        return {k: v for k, v in state_dict.items() if k.rsplit(".", 1)[-1] not in CLASS_NAME_BUFFERS}

    def after_load_model(self, name: str, missing_keys: list) -> None:
        missing = [k for k in missing_keys if k.rsplit(".", 1)[-1] not in CLASS_NAME_BUFFERS]
        if missing:
            raise UserError(f"the checkpoint of {name} lacks {missing}: it was saved by a different model "
                            "(check the trainer, its config and the backbone)")
