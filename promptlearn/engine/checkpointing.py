"""Saving, loading and resuming the registered models (Dassl's file layout), as a trainer mixin.

Each registered model ``NAME`` is saved to ``<dir>/NAME/model.pth.tar-<epoch>`` (``model-best.pth.tar``
for the best-on-validation model). A checkpoint also holds the optimizer, the scheduler and the random
generators' states, so that a resumed run continues exactly where the interrupted one stopped.
"""
import logging
import os
import random

import numpy as np
import torch

from ..errors import UserError
from ..utils.distributed import barrier, is_main_process
from ..utils.torchtools import load_checkpoint, save_checkpoint

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


class CheckpointMixin:
    """Needs ``self._models``, ``self._optims``, ``self._scheds`` (see TrainerBase)."""

    def model_state_dict(self, name: str) -> dict:
        """What is saved for model ``name`` (all of its parameters and persistent buffers)."""
        return self._models[name].state_dict()

    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None,
                   model_name: str = "") -> None:
        if is_main_process():
            rng = get_rng_state()
            for name in self.get_model_names():
                optim = self._optims[name]
                sched = self._scheds[name]
                save_checkpoint(
                    {
                        "state_dict": self.model_state_dict(name),
                        "epoch": epoch + 1,
                        "optimizer": optim.state_dict() if optim is not None else None,
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "val_result": val_result,
                        "rng_state": rng,
                    },
                    os.path.join(directory, name),
                    is_best=is_best,
                    model_name=model_name,
                )
        barrier()

    def resume_model_if_exist(self, directory: str) -> int:
        """Load the latest checkpoint of every registered model in ``directory``; the epoch to start from."""
        names = self.get_model_names()
        if not all(os.path.exists(os.path.join(directory, name, "checkpoint")) for name in names):
            logger.info("No checkpoint found, train from scratch")
            return 0
        logger.info(f'Found checkpoint at {directory} (will resume training)')
        start_epoch = 0
        for name in names:
            path = os.path.join(directory, name)
            with open(os.path.join(path, "checkpoint")) as f:
                fpath = os.path.join(path, f.readline().strip())
            logger.info(f'Loading checkpoint from "{fpath}"')
            checkpoint = load_checkpoint(fpath)
            self._models[name].load_state_dict(checkpoint["state_dict"])
            if self._optims[name] is not None and checkpoint.get("optimizer") is not None:
                self._optims[name].load_state_dict(checkpoint["optimizer"])
            if self._scheds[name] is not None and checkpoint.get("scheduler") is not None:
                self._scheds[name].load_state_dict(checkpoint["scheduler"])
            start_epoch = checkpoint["epoch"]
            if checkpoint.get("rng_state") is not None:
                set_rng_state(checkpoint["rng_state"])
        logger.info(f"Previous epoch: {start_epoch}")
        return start_epoch

    def checkpoint_path(self, directory: str, name: str, epoch=None) -> str:
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        return os.path.join(directory, name, model_file)

    def filter_loaded_state(self, name: str, state_dict: dict) -> dict:
        """Hook: drop entries that must come from the current run (e.g. class-name embeddings)."""
        return state_dict

    def load_model(self, directory: str, epoch=None) -> None:
        """Load ``model-best.pth.tar`` (or ``model.pth.tar-<epoch>``) of every registered model."""
        if not directory:
            logger.info("Note that load_model() is skipped as no pretrained model is given")
            return
        names = self.get_model_names()
        if not names:
            logger.info("Note: this trainer has no learnable model to load; --model-dir is ignored")
            return
        for name in names:
            fpath = self.checkpoint_path(directory, name, epoch)
            if not os.path.exists(fpath):
                available = []
                if os.path.isdir(os.path.join(directory, name)):
                    available = sorted(f for f in os.listdir(os.path.join(directory, name)) if f.startswith("model"))
                raise UserError(f'model not found at "{fpath}". Available in that folder: {available or "none"}; '
                                "check --model-dir and --load-epoch.")
            checkpoint = load_checkpoint(fpath)
            state_dict = self.filter_loaded_state(name, checkpoint["state_dict"])
            loaded_epoch = checkpoint.get("epoch")
            val_result = checkpoint.get("val_result")
            model = self._models[name]
            try:
                missing, unexpected = model.load_state_dict(state_dict, strict=False)
            except RuntimeError as err:
                raise UserError(f"{fpath} does not fit the model {name} ({str(err).splitlines()[0]} ...). "
                                "Was it trained with another trainer, backbone or config?") from None
            if unexpected:
                logger.warning(f"WARNING: unexpected keys in {fpath} were ignored: {unexpected}")
            msg = f'Loading weights to {name} from "{fpath}" (epoch = {loaded_epoch})'
            if val_result is not None:
                msg += f" (val_result = {val_result:.1f})"
            logger.info(msg)
            self.loaded_epoch = loaded_epoch
            self.after_load_model(name, missing)

    def after_load_model(self, name: str, missing_keys: list) -> None:
        """Hook: check the keys that were not in the checkpoint."""
        if missing_keys:
            logger.warning(f"WARNING: keys missing from the checkpoint of {name}: {missing_keys}")
