"""The data of a run (Dassl's ``dassl.data``): ``DataManager`` builds the dataset, its transforms and its three
loaders; ``DatasetWrapper`` turns an item into the dict a batch is made of."""
import logging
import random

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchvision.transforms import Compose, Normalize, Resize, ToTensor

from ..errors import UserError
from ..utils.tools import read_image
from .datasets import build_dataset
from .samplers import build_sampler
from .transforms import INTERPOLATION_MODES, build_transform

logger = logging.getLogger(__name__)


def view_key(index: int) -> str:
    """The batch key of the ``index``-th training view: ``img``, then ``img2``, ``img3``, ... (Dassl's keys)."""
    return "img" if index == 0 else f"img{index + 1}"


def _seed_worker(worker_id: int) -> None:
    # torch gives every worker its own seed (drawn when the epoch's iterator starts); Python's and NumPy's
    # generators get the same one, as the transforms may use any of the three
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_data_loader(cfg, sampler_type: str = "SequentialSampler", data_source=None, batch_size: int = 64,
                      tfm=None, is_train: bool = True, dataset_wrapper=None) -> DataLoader:
    """A loader over ``data_source`` (a list of Datum) whose items go through ``tfm``. Training drops the last
    incomplete batch, unless that would leave nothing (this rank's share, in a distributed run)."""
    sampler = build_sampler(sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size,
                            is_train=is_train)
    wrapper = dataset_wrapper or DatasetWrapper
    loader = DataLoader(
        wrapper(cfg, data_source, transform=tfm, is_train=is_train),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(sampler) >= batch_size,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
        worker_init_fn=_seed_worker,
    )
    if len(loader) == 0:
        raise UserError(f"the data loader is empty ({len(data_source)} items, batch size {batch_size})")
    return loader


class DataManager:
    """``dataset`` (DATASET.NAME), ``tfm_train``/``tfm_test`` and the loaders ``train_loader_x`` (labelled training
    data), ``val_loader`` (None when the dataset has no validation split) and ``test_loader``.

    ``custom_tfm_train``/``custom_tfm_test`` replace the transforms built from INPUT.TRANSFORMS; a list of
    training transforms makes one view per transform (``img``, ``img2``, ...) from the same decoded image.
    """

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        self.dataset = build_dataset(cfg)
        self.tfm_train = build_transform(cfg, is_train=True) if custom_tfm_train is None else custom_tfm_train
        self.tfm_test = build_transform(cfg, is_train=False) if custom_tfm_test is None else custom_tfm_test
        for given, split in ((custom_tfm_train, "training"), (custom_tfm_test, "test")):
            if given is not None:
                logger.info(f"The {split} transform is the trainer's own")

        def loader(items, loader_cfg, tfm, is_train):
            return build_data_loader(cfg, sampler_type=loader_cfg.SAMPLER, data_source=items,
                                     batch_size=loader_cfg.BATCH_SIZE, tfm=tfm, is_train=is_train,
                                     dataset_wrapper=dataset_wrapper)

        data = cfg.DATALOADER
        self.train_loader_x = loader(self.dataset.train_x, data.TRAIN_X, self.tfm_train, True)
        self.val_loader = loader(self.dataset.val, data.TEST, self.tfm_test, False) if self.dataset.val else None
        self.test_loader = loader(self.dataset.test, data.TEST, self.tfm_test, False)
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def lab2cname(self) -> dict:
        return self.dataset.lab2cname

    @property
    def classnames(self) -> list:
        return self.dataset.classnames

    def show_dataset_summary(self, cfg) -> None:
        rows = [("dataset", cfg.DATASET.NAME), ("classes", f"{self.num_classes:,}")]
        for split, items in (("train", self.dataset.train_x), ("val", self.dataset.val), ("test", self.dataset.test)):
            if items:
                rows.append((f"{split} images", f"{len(items):,}"))
        logger.info(tabulate(rows, tablefmt="plain"))


class DatasetWrapper(TorchDataset):
    """Item ``i`` -> ``{"img", "label", "domain", "impath", "index"}``: the image read from disk and transformed.

    With a list of transforms, view ``k`` goes to ``view_key(k)`` (``img``, ``img2``, ...), each made from the
    same decoded image; with DATALOADER.K_TRANSFORMS = K > 1 (training), each key holds a list of K views. No
    transform: the decoded image itself. DATALOADER.RETURN_IMG0 adds ``img0``, the image resized and
    normalized but not augmented.
    """

    def __init__(self, cfg, data_source, transform=None, is_train: bool = False):
        self.cfg, self.data_source, self.transform, self.is_train = cfg, data_source, transform, is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        if self.k_tfm > 1 and transform is None:
            raise UserError("DATALOADER.K_TRANSFORMS > 1 needs a transform (INPUT.NO_TRANSFORM is set)")
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        plain = [Resize(tuple(cfg.INPUT.SIZE), interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]), ToTensor()]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            plain.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = Compose(plain)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        item = self.data_source[idx]
        image = read_image(item.impath)
        sample = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        transforms = self.transform if isinstance(self.transform, (list, tuple)) else [self.transform]
        for k, tfm in enumerate(transforms):
            sample[view_key(k)] = image if tfm is None else self._views(tfm, image)
        if self.return_img0:
            sample["img0"] = self.to_tensor(image)
        return sample

    def _views(self, tfm, image):
        views = [tfm(image) for _ in range(self.k_tfm)]
        return views if self.k_tfm > 1 else views[0]
