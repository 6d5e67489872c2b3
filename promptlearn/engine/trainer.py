"""Trainer templates with Dassl's names and hooks.

- ``TrainerBase``: the registered models (each with its optimizer and scheduler), the optimization step and
  the epoch loop's skeleton (before_train, then per epoch before_epoch / run_epoch / after_epoch, after_train).
- ``SimpleTrainer``: builds the data, the model and the evaluator from the config; the evaluation, the results
  file, tensorboard and the checkpoint policy, each in one place; the set-up of a distributed run.
- ``TrainerX``: the loop over labelled batches, with its progress line.

A Dassl-style method subclasses ``TrainerX`` and fills in ``build_model`` and ``forward_backward``; a CLIP prompt
method subclasses ``CLIPTrainer`` (clip_trainer.py) and fills in ``build_custom_clip`` and, for its own
objective, ``compute_loss``.

Under torchrun the registered models are wrapped together in one ``DistributedDataParallel``: a training
step's forward runs through it (``training_forward``), so that DDP averages the gradients bucket by bucket
while the backward pass runs, each dtype in its own buckets. BatchNorm layers of the registered models
normalize with the statistics of the global batch, and every rank draws its own augmentation stream.
"""
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

from ..config import check_values
from ..data import DataManager
from ..errors import UserError
from ..evaluation import build_evaluator
from ..utils.distributed import (
    broadcast_from_main,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    rank_seed,
    shared_random_seed,
    true_on_all_ranks,
    use_cross_rank_batchnorm,
)
from ..utils.meters import AverageMeter, MetricMeter
from ..utils.tools import atomic_write, mkdir_if_missing, read_json, set_random_seed, unimplemented
from ..utils.torchtools import epoch_files
from .checkpointing import CheckpointMixin

logger = logging.getLogger(__name__)


class _RegisteredModels(nn.Module):
    """What DistributedDataParallel wraps: the registered models as children (their trainable parameters are the
    ones whose gradients it averages; nothing frozen is broadcast or hooked) and, as the forward pass, whatever
    function computes a training step's loss from them."""

    def __init__(self, models: dict):
        super().__init__()
        self.models = nn.ModuleDict(models)

    def forward(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


class TrainerBase(CheckpointMixin):
    """Registered models with their optimizers and schedulers, the optimization step and the epoch loop."""

    #: DistributedDataParallel with ``static_graph``: the same parameters are used in every step (true of every
    #: trainer here; parameters a configuration never uses are found in the first step). A trainer whose set of
    #: used parameters changes from step to step sets False (DDP then searches the graph every step).
    DDP_STATIC_GRAPH = True

    def __init__(self):
        self._models = OrderedDict()
        self._optims = OrderedDict()
        self._scheds = OrderedDict()
        self._writer = None
        self._ddp = None
        self._ddp_forward_done = False

    # --------------------------------------------------------------------------------------- the models
    def register_model(self, name: str = "model", model: nn.Module = None, optim=None, sched=None) -> None:
        """Enter ``model`` under ``name`` (its checkpoint folder) with the optimizer and scheduler that train it."""
        if "_models" not in self.__dict__:
            raise AttributeError("call super().__init__() before register_model()")
        if name in self._models:
            raise KeyError(f'a model named "{name}" is already registered')
        self._models[name], self._optims[name], self._scheds[name] = model, optim, sched

    def get_model_names(self, names=None) -> list:
        if names is None:
            return list(self._models)
        names = [names] if isinstance(names, str) else list(names)
        unknown = [name for name in names if name not in self._models]
        if unknown:
            raise KeyError(f"unknown model name(s) {unknown}; registered: {list(self._models)}")
        return names

    def _with(self, table: dict, names=None) -> list:
        """The non-empty entries of ``table`` (optimizers or schedulers) of the models ``names`` (default: all)."""
        return [table[name] for name in self.get_model_names(names) if table[name] is not None]

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        if mode not in ("train", "eval", "test"):
            raise KeyError(f'mode must be "train", "eval" or "test", got "{mode}"')
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    # ------------------------------------------------------------------------------ the optimization step
    def training_forward(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``: the forward pass of a training step, whose output the loss is computed from.

        In a distributed run it runs as the forward of the DistributedDataParallel that wraps the registered
        models, which is what makes the backward pass average their gradients; in one process it is a call.
        """
        if self._ddp is None:
            return fn(*args, **kwargs)
        self._ddp_forward_done = True
        return self._ddp(fn, *args, **kwargs)

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        # decided by all ranks together: a rank that stopped alone would leave the others waiting forever
        if not true_on_all_ranks(bool(torch.isfinite(loss).all()), loss.device):
            raise FloatingPointError("Loss is infinite or NaN!")

    def model_zero_grad(self, names=None) -> None:
        for optim in self._with(self._optims, names):
            optim.zero_grad()

    def model_backward(self, loss: torch.Tensor) -> None:
        if self._ddp is not None and not self._ddp_forward_done:
            raise UserError(f"{type(self).__name__} computed its loss outside the engine's DistributedDataParallel, "
                            "so its gradients would not be averaged over the ranks: compute the forward pass "
                            "with self.training_forward(fn, ...) (CLIPTrainer does so for compute_loss), or run "
                            "this trainer in one process")
        self._ddp_forward_done = False
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None) -> None:
        for optim in self._with(self._optims, names):
            optim.step()

    def model_backward_and_update(self, loss: torch.Tensor, names=None) -> None:
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    def update_lr(self, names=None) -> None:
        for sched in self._with(self._scheds, names):
            sched.step()

    def get_current_lr(self, names=None) -> float:
        return self._optims[self.get_model_names(names)[0]].param_groups[0]["lr"]

    # ------------------------------------------------------------------------------------- tensorboard
    def init_writer(self, log_dir: str) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            logger.info(f"Tensorboard events: {log_dir}")
            self._writer = SummaryWriter(log_dir=log_dir)

    def write_scalar(self, tag: str, scalar_value, global_step=None) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    def close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # --------------------------------------------------------------------------------------- the loop
    def train(self, start_epoch: int, max_epoch: int) -> None:
        """Epochs ``start_epoch`` .. ``max_epoch - 1`` (``before_train`` may move the start, e.g. to resume)."""
        self.start_epoch, self.max_epoch = start_epoch, max_epoch
        self.before_train()
        for epoch in range(self.start_epoch, self.max_epoch):
            self.epoch = epoch
            for stage in (self.before_epoch, self.run_epoch, self.after_epoch):
                stage()
        self.after_train()

    def before_train(self):
        """Hook: once, before the first epoch."""

    def after_train(self):
        """Hook: once, after the last epoch."""

    def before_epoch(self):
        """Hook: at the start of every epoch (``self.epoch`` is set)."""

    def after_epoch(self):
        """Hook: at the end of every epoch."""

    run_epoch = unimplemented("run_epoch", "one pass over the training data")
    test = unimplemented("test", "an evaluation; returns its first metric")
    parse_batch_train = unimplemented("parse_batch_train", "a training batch (the loader's dict) -> the inputs "
                                                           "forward_backward uses")
    parse_batch_test = unimplemented("parse_batch_test", "an evaluation batch -> (input, label)")
    forward_backward = unimplemented("forward_backward", "one optimization step on a batch; returns a dict of the "
                                                         "numbers to report (losses, accuracy)")
    model_inference = unimplemented("model_inference", "the logits of an evaluation batch")


class SimpleTrainer(TrainerBase):
    """Builds the data, the model and the evaluator from ``cfg``; runs training and testing."""

    def __init__(self, cfg):
        super().__init__()
        check_values(cfg)
        self.check_cfg(cfg)
        self.cfg, self.output_dir = cfg, cfg.OUTPUT_DIR
        on_gpu = torch.cuda.is_available() and cfg.USE_CUDA
        self.device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
        self.start_epoch, self.epoch, self.max_epoch = 0, 0, cfg.OPTIM.MAX_EPOCH
        self.best_result = -math.inf
        self.build_data_loader()  # the data first: build_model reads the class names and counts
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self._prepare_ranks()

    def check_cfg(self, cfg) -> None:
        """Hook: check the trainer's config keys."""

    def custom_train_transform(self):
        """Hook: a training transform (or a list of them, one per view) replacing the one built from the config."""
        return None

    def build_data_loader(self) -> None:
        dm = DataManager(self.cfg, custom_tfm_train=self.custom_train_transform())
        self.train_loader_x, self.val_loader, self.test_loader = dm.train_loader_x, dm.val_loader, dm.test_loader
        self.num_classes = dm.num_classes
        self.lab2cname = dm.lab2cname
        self.dm = dm

    build_model = unimplemented("build_model", "build the model and register its learnable parts "
                                               "(register_model) with their optimizer and scheduler")

    # -------------------------------------------------------------------------------- distributed runs
    def _prepare_ranks(self) -> None:
        """Under torchrun: cross-rank BatchNorm in the registered models, one DistributedDataParallel around them
        (it also starts every rank from rank 0's weights), and the base of the per-rank augmentation seeds."""
        if not is_distributed():
            return
        trainable = [p for model in self._models.values() for p in model.parameters() if p.requires_grad]
        for model in self._models.values():
            use_cross_rank_batchnorm(model)
        if trainable:
            self._ddp = nn.parallel.DistributedDataParallel(
                _RegisteredModels(self._models), device_ids=None, forward_sync_buffers=False,
                static_graph=self.DDP_STATIC_GRAPH, find_unused_parameters=not self.DDP_STATIC_GRAPH)
        self.augmentation_seed = self.cfg.SEED if self.cfg.SEED >= 0 else shared_random_seed()
        batch = self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE
        logger.info(f"{get_world_size()} ranks of {batch} images each: {get_world_size() * batch} images per step")

    def seed_augmentation(self, epoch: int) -> None:
        """Give this rank its own random streams for ``epoch`` (the transforms in this process and the seeds of
        the loader's workers, which are drawn from torch's generator when the epoch's iterator starts). Ranks
        left on the run's common seed would augment their images with the same random parameters."""
        set_random_seed(rank_seed(self.augmentation_seed, get_rank(), epoch))

    # ------------------------------------------------------------------------------------- the schedule
    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        self.start_epoch = self.resume_model_if_exist(self.cfg.RESUME or self.output_dir)
        if self.start_epoch:
            self.remove_interim_checkpoints(self.start_epoch)
        self.last_checkpoint_time = time.time()
        # the last finished epoch: what after_train reports when a resumed run has no epoch left to train
        self.epoch = max(self.start_epoch - 1, 0)
        if is_main_process():
            writer_dir = os.path.join(self.output_dir, "tensorboard")
            mkdir_if_missing(writer_dir)
            self.init_writer(writer_dir)
        self.time_start = time.time()

    def before_epoch(self) -> None:
        sampler = getattr(self.train_loader_x, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        if is_distributed():
            self.seed_augmentation(self.epoch)

    @property
    def selects_best_val(self) -> bool:
        return not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val"

    def after_epoch(self) -> None:
        """The checkpoint policy. With TEST.FINAL_MODEL best_val the epoch is evaluated on the validation split
        and a new best is kept in model-best.pth.tar. The epoch is saved as model.pth.tar-N (the resume point)
        and kept every TRAIN.CHECKPOINT_FREQ epochs and after the last one; between those, it is saved when
        TRAIN.CHECKPOINT_MINUTES have passed since the last checkpoint, as an interim resume point that the next
        checkpoint replaces (so that a kill loses at most that much training, or one epoch if longer)."""
        if self.selects_best_val:
            if self.val_loader is None:
                raise UserError("TEST.FINAL_MODEL best_val needs a validation split, and this dataset has none")
            result = self.test(split="val")
            if result > self.best_result:
                self.best_result = result
                self.save_model(self.epoch, self.output_dir, val_result=result, model_name="model-best.pth.tar")
        if self.kept_epoch(self.epoch + 1) or self.interim_checkpoint_due():
            self.save_model(self.epoch, self.output_dir)
            self.last_checkpoint_time = time.time()
            self.remove_interim_checkpoints(self.epoch + 1)

    def kept_epoch(self, epoch: int) -> bool:
        """Whether the checkpoint of ``epoch`` (1-based) stays in the folder: every CHECKPOINT_FREQ-th, and the last."""
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        return epoch == self.max_epoch or (freq > 0 and epoch % freq == 0)

    def interim_checkpoint_due(self) -> bool:
        """TRAIN.CHECKPOINT_MINUTES or more since the last checkpoint (rank 0's clock decides for every rank)."""
        minutes = self.cfg.TRAIN.CHECKPOINT_MINUTES
        due = minutes >= 0 and time.time() - self.last_checkpoint_time >= minutes * 60
        return bool(broadcast_from_main(due))

    def remove_interim_checkpoints(self, resume_epoch: int) -> None:
        """Remove the checkpoints of the epochs that are not kept, but the resume point ``resume_epoch``: the
        interim ones it replaces, and those a run killed while saving left behind."""
        if not is_main_process():
            return
        for name in self.get_model_names():
            folder = os.path.join(self.output_dir, name)
            for file in epoch_files(folder):
                epoch = int(file.rsplit("-", 1)[1])
                if epoch != resume_epoch and not self.kept_epoch(epoch):
                    os.remove(os.path.join(folder, file))
                    logger.info(f"Removed {os.path.join(folder, file)}: an interim resume point, replaced by epoch "
                                f"{resume_epoch}'s")

    def after_train(self) -> None:
        logger.info("Finish training")  # the line after which CoOp's parse_test_res.py reads the final result
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                logger.info("Final evaluation: the epoch with the best validation accuracy")
                self.load_model(self.output_dir)
            else:
                logger.info("Final evaluation: the last epoch")
            self.test()
        logger.info(f"Elapsed: {datetime.timedelta(seconds=round(time.time() - self.time_start))}")
        self.close_writer()

    # --------------------------------------------------------------------------------------- evaluation
    def before_test(self) -> None:
        """Hook: at the start of every evaluation (under torch.inference_mode)."""

    def after_test(self) -> None:
        """Hook: at the end of every evaluation, also when it fails (under torch.inference_mode)."""

    def test(self, split=None) -> float:
        """Evaluate on ``split`` (default TEST.SPLIT; "val" without a validation split means "test"): the result
        lines, tensorboard's ``<split>/<metric>`` and results.json. Returns the first metric (accuracy)."""
        split = split or self.cfg.TEST.SPLIT
        if split != "val" or self.val_loader is None:
            split = "test"
        loader = self.val_loader if split == "val" else self.test_loader
        logger.info(f"Evaluation on the {split} split")
        self.set_model_mode("eval")
        self.evaluator.reset()
        with torch.inference_mode():
            try:
                self.before_test()
                for batch in tqdm(loader, desc=f"eval {split}", disable=None, leave=False):
                    image, label = self.parse_batch_test(batch)
                    self.evaluator.process(self.model_inference(image), label)
            finally:
                self.after_test()  # e.g. drops the class text features cached for this evaluation
        results = self.evaluator.evaluate()
        for metric, value in results.items():
            self.write_scalar(f"{split}/{metric}", value, self.epoch)
        self.write_results(split, results)
        return next(iter(results.values()))

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

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)


class _EpochProgress:
    """Running means of what the steps of an epoch report, the progress line and tensorboard's train/ scalars."""

    def __init__(self, trainer: "TrainerX"):
        self.trainer = trainer
        self.reported = MetricMeter(delimiter=", ")
        self.step_time, self.wait_time = AverageMeter(), AverageMeter()

    def update(self, summary: dict, waited: float, took: float) -> None:
        t = self.trainer
        self.reported.update(summary)
        self.wait_time.update(waited)
        self.step_time.update(took)
        step = t.epoch * t.num_batches + t.batch_idx
        for name, meter in self.reported.meters.items():
            t.write_scalar(f"train/{name}", meter.avg, step)
        t.write_scalar("train/lr", t.get_current_lr(), step)
        done = t.batch_idx + 1
        if done % t.cfg.TRAIN.PRINT_FREQ == 0 or done == t.num_batches:
            left = (t.max_epoch - t.epoch) * t.num_batches - done
            eta = datetime.timedelta(seconds=round(self.step_time.avg * left))
            logger.info(f"epoch {t.epoch + 1}/{t.max_epoch}, batch {done}/{t.num_batches}: {self.reported}; "
                        f"lr {t.get_current_lr():.3e}; {self.step_time.avg:.3f} s/batch "
                        f"(data {self.wait_time.avg:.3f} s); eta {eta}")


class TrainerX(SimpleTrainer):
    """A trainer over labelled data (``train_loader_x``)."""

    def run_epoch(self) -> None:
        self.set_model_mode("train")
        self.num_batches = len(self.train_loader_x)
        progress = _EpochProgress(self)
        started = time.time()
        for batch_idx, batch in enumerate(self.train_loader_x):
            self.batch_idx = batch_idx
            loaded = time.time()
            try:
                summary = self.forward_backward(batch)
            except FloatingPointError:
                raise UserError(
                    f"the loss became infinite or NaN at epoch {self.epoch + 1}, batch {self.batch_idx + 1}; "
                    f"training stopped. Checkpoints already in {self.output_dir} are kept. Try a lower OPTIM.LR "
                    "or PREC fp32/amp, in another --output-dir or here with --start-over (a rerun in this folder "
                    "with other settings is refused)") from None
            progress.update(summary, waited=loaded - started, took=time.time() - started)
            started = time.time()

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device), batch["domain"].to(self.device)
