"""``DataManager``: builds the dataset, its transforms and its data loaders (Dassl's ``dassl.data``)."""
import logging
import random

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset as TorchDataset
from torchvision.transforms import Compose, Normalize, Resize, ToTensor

from ..errors import UserError
from ..utils.tools import read_image
from .datasets import build_dataset
from .samplers import build_sampler
from .transforms import INTERPOLATION_MODES, build_transform

logger = logging.getLogger(__name__)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker differently; give Python's and NumPy's generators the same per-worker seed
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_data_loader(cfg, sampler_type: str = "SequentialSampler", data_source=None, batch_size: int = 64,
                      n_domain: int = 0, n_ins: int = 2, tfm=None, is_train: bool = True, dataset_wrapper=None):
    sampler = build_sampler(sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size,
                            n_domain=n_domain, n_ins=n_ins, is_train=is_train)
    if dataset_wrapper is None:
        dataset_wrapper = DatasetWrapper
    loader = DataLoader(
        dataset_wrapper(cfg, data_source, transform=tfm, is_train=is_train),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(sampler) >= batch_size,  # this rank's share in a distributed run
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
        worker_init_fn=_seed_worker,
    )
    if len(loader) == 0:
        raise UserError(f"the data loader is empty ({len(data_source)} items, batch size {batch_size})")
    return loader


class DataManager:
    """Builds ``dataset``, ``train_loader_x``, ``train_loader_u``, ``val_loader`` and ``test_loader``."""

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        if custom_tfm_train is None:
            tfm_train = build_transform(cfg, is_train=True)
        else:
            logger.info("* Using custom transform for training")
            tfm_train = custom_tfm_train
        if custom_tfm_test is None:
            tfm_test = build_transform(cfg, is_train=False)
        else:
            logger.info("* Using custom transform for testing")
            tfm_test = custom_tfm_test

        self.train_loader_x = build_data_loader(
            cfg, sampler_type=cfg.DATALOADER.TRAIN_X.SAMPLER, data_source=dataset.train_x,
            batch_size=cfg.DATALOADER.TRAIN_X.BATCH_SIZE, n_domain=cfg.DATALOADER.TRAIN_X.N_DOMAIN,
            n_ins=cfg.DATALOADER.TRAIN_X.N_INS, tfm=tfm_train, is_train=True, dataset_wrapper=dataset_wrapper)
        self.train_loader_u = None
        if dataset.train_u:
            u_cfg = cfg.DATALOADER.TRAIN_X if cfg.DATALOADER.TRAIN_U.SAME_AS_X else cfg.DATALOADER.TRAIN_U
            self.train_loader_u = build_data_loader(
                cfg, sampler_type=u_cfg.SAMPLER, data_source=dataset.train_u, batch_size=u_cfg.BATCH_SIZE,
                n_domain=u_cfg.N_DOMAIN, n_ins=u_cfg.N_INS, tfm=tfm_train, is_train=True,
                dataset_wrapper=dataset_wrapper)
        self.val_loader = None
        if dataset.val:
            self.val_loader = build_data_loader(
                cfg, sampler_type=cfg.DATALOADER.TEST.SAMPLER, data_source=dataset.val,
                batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, tfm=tfm_test, is_train=False,
                dataset_wrapper=dataset_wrapper)
        self.test_loader = build_data_loader(
            cfg, sampler_type=cfg.DATALOADER.TEST.SAMPLER, data_source=dataset.test,
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, tfm=tfm_test, is_train=False,
            dataset_wrapper=dataset_wrapper)

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset
        self.tfm_train = tfm_train
        self.tfm_test = tfm_test
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def num_source_domains(self) -> int:
        return self._num_source_domains

    @property
    def lab2cname(self) -> dict:
        return self._lab2cname

    @property
    def classnames(self) -> list:
        return self.dataset.classnames

    def show_dataset_summary(self, cfg) -> None:
        dataset_name = cfg.DATASET.NAME
        table = [["Dataset", dataset_name]]
        if cfg.DATASET.SOURCE_DOMAINS:
            table.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            table.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.train_u:
            table.append(["# train_u", f"{len(self.dataset.train_u):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        logger.info(tabulate(table))


class DatasetWrapper(TorchDataset):
    """Reads an image and returns ``{"img", "label", "domain", "impath", "index"}``.

    With a list of transforms the views are ``img``, ``img2``, ``img3``, ..., each made from the same
    decoded image; with ``K_TRANSFORMS > 1`` (training) each key holds a list of K views.
    """

    def __init__(self, cfg, data_source, transform=None, is_train: bool = False):
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise UserError("DATALOADER.K_TRANSFORMS > 1 needs a transform (INPUT.NO_TRANSFORM is set)")
        interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
        to_tensor = [Resize(tuple(cfg.INPUT.SIZE), interpolation=interp), ToTensor()]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            to_tensor.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = Compose(to_tensor)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)
        if self.transform is not None:
            if isinstance(self.transform, (list, tuple)):
                for i, tfm in enumerate(self.transform):
                    img = self._transform_image(tfm, img0)
                    output["img" if i == 0 else f"img{i + 1}"] = img
            else:
                output["img"] = self._transform_image(self.transform, img0)
        else:
            output["img"] = img0
        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm, img0):
        views = [tfm(img0) for _ in range(self.k_tfm)]
        return views[0] if len(views) == 1 else views
