"""Saving, resuming and loading the registered models (Dassl's file layout), as a trainer mixin.

Each registered model ``NAME`` is saved to ``<dir>/NAME/model.pth.tar-<epoch>``; ``<dir>/NAME/checkpoint`` names
the newest of those, which is where a resumed run continues, whatever ``TEST.FINAL_MODEL`` is.
``model-best.pth.tar`` (the best epoch on the validation split) is written beside them for evaluation and is
never resumed from. A checkpoint also holds the optimizer, the scheduler, the random generators and the best
validation result so far, so that a resumed run continues exactly where the interrupted one stopped, and says
what saved it (``saved_by``: trainer, backbone, class count, dataset): a checkpoint of another trainer or
backbone is refused, and so is one whose parameters do not fit the model (another class count, another config).
"""
import logging
import math
import os
import random

import numpy as np
import torch

from ..errors import UserError
from ..utils.distributed import barrier, is_main_process
from ..utils.torchtools import BEST_FILE, epoch_file, load_checkpoint, resume_file, save_checkpoint

logger = logging.getLogger(__name__)


def get_rng_state() -> dict:
    """Python, NumPy and torch generator states in a form ``torch.load(weights_only=True)`` accepts."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def describe_origin(origin: dict) -> str:
    """"CoOp on tiny-ViT for 5 classes of DemoShapes" (what a checkpoint's ``saved_by`` says)."""
    text = f"{origin.get('trainer') or 'an unknown trainer'} on {origin.get('backbone') or 'an unknown backbone'}"
    if origin.get("num_classes") is not None:
        text += f" for {origin['num_classes']} classes"
    if origin.get("dataset"):
        text += f" of {origin['dataset']}"
    return text


class CheckpointMixin:
    """Needs ``self._models``, ``self._optims``, ``self._scheds`` (see TrainerBase)."""

    #: the best validation result so far (TEST.FINAL_MODEL best_val); saved in every checkpoint
    best_result = -math.inf

    def model_state_dict(self, name: str) -> dict:
        """What is saved for model ``name`` (all of its parameters and persistent buffers)."""
        return self._models[name].state_dict()

    def checkpoint_origin(self) -> dict:
        """What saved a checkpoint, written in it as ``saved_by`` and compared when it is loaded."""
        cfg = getattr(self, "cfg", None)
        if cfg is None:
            return {}
        return {"trainer": cfg.TRAINER.NAME, "backbone": cfg.MODEL.BACKBONE.NAME,
                "num_classes": getattr(self, "num_classes", None), "dataset": cfg.DATASET.NAME}

    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None,
                   model_name: str = "") -> None:
        """Save the state after ``epoch`` (0-based) of every registered model (on rank 0; the others wait).

        ``is_best``: also copy it to model-best.pth.tar. ``model_name``: write that file only, leaving the resume
        point as it is.
        """
        if is_main_process():
            common = {"epoch": epoch + 1, "val_result": val_result, "best_result": self.best_result,
                      "rng_state": get_rng_state(), "saved_by": self.checkpoint_origin()}
            for name in self.get_model_names():
                optim, sched = self._optims[name], self._scheds[name]
                state = {"state_dict": self.model_state_dict(name),
                         "optimizer": optim.state_dict() if optim is not None else None,
                         "scheduler": sched.state_dict() if sched is not None else None, **common}
                save_checkpoint(state, os.path.join(directory, name), is_best=is_best, model_name=model_name)
        barrier()

    def check_origin(self, path: str, checkpoint: dict, resuming: bool) -> None:
        """Refuse a checkpoint saved by another trainer or backbone (resuming: or for another class count)."""
        saved, mine = checkpoint.get("saved_by") or {}, self.checkpoint_origin()
        keys = ("trainer", "backbone", "num_classes") if resuming else ("trainer", "backbone")
        if all(saved.get(key) is None or mine.get(key) is None or saved[key] == mine[key] for key in keys):
            return
        advice = ("resume it with the settings it was trained with, or add --start-over to train anew" if resuming
                  else "load a checkpoint of the same trainer and backbone (check --model-dir, --trainer and "
                       "MODEL.BACKBONE.NAME)")
        raise UserError(f"{path} was saved by {describe_origin(saved)}, and this run builds "
                        f"{describe_origin(mine)}: {advice}")

    def resume_model_if_exist(self, directory: str) -> int:
        """Continue from the newest ``model.pth.tar-N`` of every registered model in ``directory``; the number of
        epochs already trained (0 when there is nothing to resume)."""
        points = {name: resume_file(os.path.join(directory, name)) for name in self.get_model_names()}
        if not points or all(path is None for path in points.values()):
            logger.info("No checkpoint to resume from: training starts at epoch 1")
            return 0
        lacking = [name for name, path in points.items() if path is None]
        if lacking:
            raise UserError(f"{directory} has checkpoints of {', '.join(n for n in points if n not in lacking)} but "
                            f"none of {', '.join(lacking)}: it was not written by this trainer; add --start-over to "
                            "train anew, or give another --output-dir")
        trained = 0
        for name, path in points.items():
            logger.info(f'Resuming {name} from "{path}"')
            checkpoint = load_checkpoint(path)
            self.check_origin(path, checkpoint, resuming=True)
            try:
                self._models[name].load_state_dict(checkpoint["state_dict"])
            except RuntimeError as err:
                raise UserError(f"{path} does not fit the model {name} ({str(err).splitlines()[0]} ...): it was "
                                "saved with other settings; add --start-over to train anew") from None
            for part, target in (("optimizer", self._optims[name]), ("scheduler", self._scheds[name])):
                if target is not None and checkpoint.get(part) is not None:
                    try:
                        target.load_state_dict(checkpoint[part])
                    except (KeyError, ValueError) as err:
                        raise UserError(f"the {part} state in {path} does not fit this run's {part} ({err!r}): were "
                                        "the OPTIM settings changed since it was saved? Train into a new "
                                        "--output-dir, or restore the settings to resume") from None
            if checkpoint.get("rng_state") is not None:
                set_rng_state(checkpoint["rng_state"])
            if checkpoint.get("best_result") is not None:
                self.best_result = checkpoint["best_result"]
            trained = checkpoint["epoch"]
        logger.info(f"{trained} epoch(s) already trained")
        return trained

    def checkpoint_path(self, directory: str, name: str, epoch=None) -> str:
        return os.path.join(directory, name, BEST_FILE if epoch is None else epoch_file(epoch))

    def filter_loaded_state(self, name: str, state_dict: dict) -> dict:
        """Hook: drop entries that must come from the current run (e.g. class-name embeddings)."""
        return state_dict

    def load_model(self, directory: str, epoch=None) -> None:
        """Load ``model-best.pth.tar`` (or ``model.pth.tar-<epoch>``) of every registered model."""
        if not directory:
            logger.info("No --model-dir given: evaluating the weights as built")
            return
        if not self.get_model_names():
            logger.info("This trainer learns nothing, so there is nothing to load: --model-dir is ignored")
            return
        for name in self.get_model_names():
            fpath = self.checkpoint_path(directory, name, epoch)
            if not os.path.exists(fpath):
                folder = os.path.join(directory, name)
                available = sorted(f for f in os.listdir(folder) if f.startswith("model")) \
                    if os.path.isdir(folder) else []
                raise UserError(f'model not found at "{fpath}". Available in that folder: {available or "none"}; '
                                "check --model-dir and --load-epoch.")
            checkpoint = load_checkpoint(fpath)
            self.check_origin(fpath, checkpoint, resuming=False)
            state_dict = self.filter_loaded_state(name, checkpoint["state_dict"])
            try:
                missing, unexpected = self._models[name].load_state_dict(state_dict, strict=False)
            except RuntimeError as err:
                raise UserError(self._misfit(fpath, name, checkpoint, err)) from None
            if unexpected:
                shown = ", ".join(unexpected[:3]) + (", ..." if len(unexpected) > 3 else "")
                raise UserError(f"{fpath} holds parameters that {name} has no place for ({shown}): it was saved by "
                                "another trainer or config; check --model-dir, --trainer and --config-file")
            self.loaded_epoch = checkpoint.get("epoch")
            val_result = checkpoint.get("val_result")
            on_val = f", validation accuracy {val_result:.1f}" if val_result is not None else ""
            logger.info(f'Loaded the weights of {name} from "{fpath}" (epoch {self.loaded_epoch}{on_val})')
            self.after_load_model(name, missing)

    def _misfit(self, path: str, name: str, checkpoint: dict, err: RuntimeError) -> str:
        first = str(err).splitlines()[0]
        detail = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), first)
        saved_classes = (checkpoint.get("saved_by") or {}).get("num_classes")
        classes = getattr(self, "num_classes", None)
        if saved_classes is not None and classes is not None and saved_classes != classes:
            return (f"{path} was saved for {saved_classes} classes and this run has {classes}, and {name}'s learned "
                    f"parameters depend on the number of classes ({detail}): evaluate it on the classes it was "
                    "trained on, or train a model whose parameters are shared by all classes")
        return (f"{path} does not fit the model {name} ({detail}). Was it trained with another trainer, backbone or "
                "config?")

    def after_load_model(self, name: str, missing_keys: list) -> None:
        """Hook: check the keys that were not in the checkpoint."""
        if missing_keys:
            logger.warning(f"WARNING: the checkpoint of {name} lacks {missing_keys}; they keep their built values")
