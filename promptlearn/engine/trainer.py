"""Trainer templates with Dassl's hooks and behaviour: ``TrainerBase`` (registered models, modes, LR,
tensorboard, the epoch loop), ``SimpleTrainer`` (data, evaluation, the train/test life cycle) and
``TrainerX`` (the loop over labelled batches). A method subclasses ``TrainerX`` and fills in
``build_model`` and ``forward_backward``."""
import datetime
import json
import logging
import math
import os
import time
from collections import OrderedDict

import torch
import torch.nn as nn
from tqdm import tqdm

from ..data import DataManager
from ..errors import UserError
from ..evaluation import build_evaluator
from ..utils.distributed import (
    average_running_stats,
    broadcast_module,
    get_world_size,
    is_distributed,
    is_main_process,
    true_on_all_ranks,
)
from ..utils.meters import AverageMeter, MetricMeter
from ..utils.tools import atomic_write, mkdir_if_missing, read_json
from .checkpointing import CheckpointMixin

logger = logging.getLogger(__name__)


class TrainerBase(CheckpointMixin):
    """Registered models with their optimizers and schedulers, and the epoch loop skeleton."""

    def __init__(self):
        self._models = OrderedDict()
        self._optims = OrderedDict()
        self._scheds = OrderedDict()
        self._writer = None

    def register_model(self, name: str = "model", model: nn.Module = None, optim=None, sched=None) -> None:
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        if self.__dict__.get("_optims") is None:
            raise AttributeError("Cannot assign optim before super().__init__() call")
        if self.__dict__.get("_scheds") is None:
            raise AttributeError("Cannot assign sched before super().__init__() call")
        if name in self._models:
            raise KeyError(f'a model named "{name}" is already registered')
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names=None) -> list:
        names_real = list(self._models.keys())
        if names is not None:
            names = names if isinstance(names, list) else [names]
            for name in names:
                if name not in names_real:
                    raise KeyError(f'unknown model name "{name}"; registered: {names_real}')
            return names
        return names_real

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        for name in self.get_model_names(names):
            if mode == "train":
                self._models[name].train()
            elif mode in ("test", "eval"):
                self._models[name].eval()
            else:
                raise KeyError(f'mode must be "train", "eval" or "test", got "{mode}"')

    def update_lr(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        # decided by all ranks together: a rank that stopped alone would leave the others waiting forever
        if not true_on_all_ranks(bool(torch.isfinite(loss).all()), loss.device):
            raise FloatingPointError("Loss is infinite or NaN!")

    def init_writer(self, log_dir: str) -> None:
        if self.__dict__.get("_writer") is None or self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            logger.info(f"Initialize tensorboard (log_dir={log_dir})")
            self._writer = SummaryWriter(log_dir=log_dir)

    def close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write_scalar(self, tag: str, scalar_value, global_step=None) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    def train(self, start_epoch: int, max_epoch: int) -> None:
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        for epoch in range(self.start_epoch, self.max_epoch):
            self.epoch = epoch
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def run_epoch(self):
        raise NotImplementedError

    def test(self, split=None):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

    def model_zero_grad(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        loss.backward()

    def broadcast_models(self, names=None) -> None:
        """Start every rank from rank 0's weights, whatever each rank's initialization drew (as DDP does)."""
        for name in self.get_model_names(names):
            broadcast_module(self._models[name])

    def sync_running_stats(self, names=None) -> None:
        """Average normalization statistics over ranks, so that every rank evaluates and saves the same model."""
        for name in self.get_model_names(names):
            average_running_stats(self._models[name])

    def average_gradients(self, names=None) -> None:
        """Average the gradients of the registered models over ranks (what DDP does, done once per step)."""
        if not is_distributed():
            return
        world = get_world_size()
        for name in self.get_model_names(names):
            grads = [p.grad for p in self._models[name].parameters() if p.grad is not None]
            if not grads:
                continue
            flat = torch.cat([g.reshape(-1) for g in grads])
            torch.distributed.all_reduce(flat)
            flat /= world
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

    def model_update(self, names=None) -> None:
        self.average_gradients(names)
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss: torch.Tensor, names=None) -> None:
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)


class SimpleTrainer(TrainerBase):
    """Builds the data, the model and the evaluator from ``cfg``; runs training and testing."""

    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        if torch.cuda.is_available() and cfg.USE_CUDA:
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.broadcast_models()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -math.inf

    def check_cfg(self, cfg) -> None:
        """Hook: check the trainer's config keys."""

    def custom_train_transform(self):
        """Hook: a training transform (or a list of them, one per view) replacing the one built from the config."""
        return None

    def build_data_loader(self) -> None:
        dm = DataManager(self.cfg, custom_tfm_train=self.custom_train_transform())
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self) -> None:
        raise NotImplementedError("a trainer must build and register its model in build_model()")

    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        directory = self.cfg.RESUME or self.output_dir
        self.start_epoch = self.resume_model_if_exist(directory)
        # the last finished epoch: what after_train reports when a resumed run has no epoch left to train
        self.epoch = self.start_epoch - 1 if self.start_epoch > 0 else 0
        if is_main_process():
            writer_dir = os.path.join(self.output_dir, "tensorboard")
            mkdir_if_missing(writer_dir)
            self.init_writer(writer_dir)
        self.time_start = time.time()

    def after_train(self) -> None:
        logger.info("Finish training")
        do_test = not self.cfg.TEST.NO_TEST
        if do_test:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                logger.info("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                logger.info("Deploy the last-epoch model")
            self.test()
        elapsed = round(time.time() - self.time_start)
        logger.info(f"Elapsed: {datetime.timedelta(seconds=elapsed)}")
        self.close_writer()

    def before_epoch(self) -> None:
        sampler = getattr(self.train_loader_x, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)

    def after_epoch(self) -> None:
        self.sync_running_stats()
        last_epoch = (self.epoch + 1) == self.max_epoch
        do_test = not self.cfg.TEST.NO_TEST
        meet_checkpoint_freq = (
            (self.epoch + 1) % self.cfg.TRAIN.CHECKPOINT_FREQ == 0 if self.cfg.TRAIN.CHECKPOINT_FREQ > 0 else False
        )
        if do_test and self.cfg.TEST.FINAL_MODEL == "best_val":
            if self.val_loader is None:
                raise UserError("TEST.FINAL_MODEL=best_val needs a validation split, and this dataset has none")
            curr_result = self.test(split="val")
            is_best = curr_result > self.best_result
            if is_best:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)

    def before_test(self) -> None:
        """Hook: called at the start of every evaluation."""

    def after_test(self) -> None:
        """Hook: called at the end of every evaluation."""

    def test(self, split=None) -> float:
        """Evaluate on ``split`` ("val" or "test"); print Dassl's result lines and update results.json."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        if split is None:
            split = self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        logger.info(f"Evaluate on the *{split}* set")
        with torch.inference_mode():
            self.before_test()
            for batch in tqdm(data_loader, desc=f"eval {split}", disable=None, leave=False):
                input, label = self.parse_batch_test(batch)
                output = self.model_inference(input)
                self.evaluator.process(output, label)
            self.after_test()
        results = self.evaluator.evaluate()
        for k, v in results.items():
            self.write_scalar(f"{split}/{k}", v, self.epoch)
        self.write_results(split, results)
        return list(results.values())[0]

    def write_results(self, split: str, results: dict) -> None:
        """Record the evaluation in ``OUTPUT_DIR/results.json`` (one entry per split, latest wins)."""
        if not is_main_process() or not self.output_dir:
            return
        path = os.path.join(self.output_dir, "results.json")
        data = read_json(path) if os.path.exists(path) else {}
        cfg = self.cfg
        entry = {k: float(v) for k, v in results.items()}
        entry.update(getattr(self.evaluator, "last_counts", {}))
        # the epoch of the evaluated weights: the loaded checkpoint's, else the current one (0: nothing learned)
        entry["epoch"] = int(getattr(self, "loaded_epoch", None) or (self.epoch + 1 if self._models else 0))
        data[split] = entry
        data["run"] = {
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "subsample_classes": cfg.DATASET.SUBSAMPLE_CLASSES,
            "num_shots": cfg.DATASET.NUM_SHOTS,
            "seed": cfg.SEED,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "num_classes": self.num_classes,
        }
        with atomic_write(path) as f:
            json.dump(data, f, indent=2)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names=None) -> float:
        name = self.get_model_names(names)[0]
        return self._optims[name].param_groups[0]["lr"]


class TrainerX(SimpleTrainer):
    """A trainer over labelled data (``train_loader_x``)."""

    def run_epoch(self) -> None:
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        print_freq = self.cfg.TRAIN.PRINT_FREQ
        end = time.time()
        for batch_idx, batch in enumerate(self.train_loader_x):
            self.batch_idx = batch_idx
            data_time.update(time.time() - end)
            try:
                loss_summary = self.forward_backward(batch)
            except FloatingPointError:
                raise UserError(
                    f"the loss became infinite or NaN at epoch {self.epoch + 1}, batch {self.batch_idx + 1}; "
                    f"training stopped. Checkpoints already in {self.output_dir} are kept. Try a lower OPTIM.LR "
                    "or PREC fp32/amp.") from None
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            meet_freq = (self.batch_idx + 1) % print_freq == 0
            only_few_batches = self.num_batches < print_freq
            if meet_freq or only_few_batches:
                nb_remain = self.num_batches - self.batch_idx - 1
                nb_remain += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * nb_remain)))
                logger.info(" ".join([
                    f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                    f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                    f"{losses}",
                    f"lr {self.get_current_lr():.4e}",
                    f"eta {eta}",
                ]))
            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)
            end = time.time()

    def parse_batch_train(self, batch):
        input = batch["img"].to(self.device)
        label = batch["label"].to(self.device)
        domain = batch["domain"].to(self.device)
        return input, label, domain
