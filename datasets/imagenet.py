"""ImageNet (ILSVRC-2012): 1000 classes from ``images/train`` and ``images/val`` in wnid folders, with
CLIP's class names from ``classnames.txt``; the scanned lists are cached in ``preprocessed.pkl``. Also the
base of the ImageNet test sets (V2, Sketch, A, R), which read the same ``classnames.txt``."""
import logging
import os
import pickle
from collections import OrderedDict
from itertools import chain
from typing import Dict, Iterable, Optional, Tuple

from promptlearn.data.datasets import DATASET_REGISTRY, Datum
from promptlearn.data.datasets.base_dataset import load_pickle, save_pickle
from promptlearn.data.datasets.image_files import find_missing_files
from promptlearn.data.datasets.layout import Layout, LayoutDataset, Piece
from promptlearn.utils.tools import listdir_nohidden

logger = logging.getLogger(__name__)

CLASSNAMES_FILE = "classnames.txt"
PREPROCESSED = "preprocessed.pkl"


def class_folders(image_dir: str) -> list:
    """The sorted sub-folders of ``image_dir`` (files such as README.txt are not classes)."""
    return sorted(entry.name for entry in os.scandir(image_dir) if entry.is_dir() and not entry.name.startswith("."))


def scan_class_folders(layout: Layout, image_dir: str, folders: Iterable[Tuple[str, int, str]]) -> list:
    """Datum for every image of ``folders`` (``(folder, label, classname)`` triples), in sorted file order
    so that the lists, and the few-shot picks drawn from them, do not depend on the file system."""
    items = []
    for folder, label, classname in folders:
        class_dir = os.path.join(image_dir, folder)
        try:
            imnames = listdir_nohidden(class_dir, sort=True)
        except (FileNotFoundError, NotADirectoryError):
            raise layout.error(f'folder {class_dir} of class "{classname}" not found') from None
        if not imnames:
            raise layout.error(f'no image found for class "{classname}": folder {class_dir} is empty')
        items.extend(Datum(impath=os.path.join(class_dir, imname), label=label, classname=classname)
                     for imname in imnames)
    return items


def wnid_folders(layout: Layout, image_dir: str, classnames: dict) -> list:
    """``(wnid, label, classname)`` for the wnid folders present; label = index in their sorted list."""
    folders = class_folders(image_dir)
    if not folders:
        raise layout.error(f"no class folder found in {image_dir}")
    unknown = [folder for folder in folders if folder not in classnames]
    if unknown:
        raise layout.error(f'folder {os.path.join(image_dir, unknown[0])} is not a class of '
                           f"{layout.path(CLASSNAMES_FILE)} ({len(unknown)} such folders)")
    return [(folder, label, classnames[folder]) for label, folder in enumerate(folders)]


@DATASET_REGISTRY.register()
class ImageNet(LayoutDataset):
    """Labels are indices in the sorted list of wnid folders present. Few-shot sampling applies to train
    only; the val images are the test set and also serve as val."""

    dataset_dir = "imagenet"
    pieces = (
        Piece("images/train", "training image", is_dir=True),
        Piece("images/val", "validation image", is_dir=True),
        Piece(CLASSNAMES_FILE, "class list"),
    )

    @staticmethod
    def read_classnames(text_file: str) -> OrderedDict:
        """``<wnid> <class name>`` per line -> {wnid: class name}, in file order."""
        classnames = OrderedDict()
        with open(text_file) as f:
            for line in f:
                folder, _, classname = line.strip().partition(" ")
                if folder:
                    classnames[folder] = classname
        return classnames

    @classmethod
    def read_lists(cls, layout: Layout) -> Dict[str, list]:
        return cls.load_preprocessed(layout) or cls.scan(layout)

    @classmethod
    def scan(cls, layout: Layout) -> Dict[str, list]:
        classnames = cls.read_classnames(layout.path(CLASSNAMES_FILE))
        train_dir, val_dir = layout.path("images/train"), layout.path("images/val")
        train_folders = wnid_folders(layout, train_dir, classnames)
        val_folders = wnid_folders(layout, val_dir, classnames)
        if train_folders != val_folders:
            only = sorted({f for f, _, _ in train_folders} ^ {f for f, _, _ in val_folders})
            raise layout.error(f"images/train and images/val must hold the same class folders; {only[0]} is in "
                               f"one only ({len(only)} such folders)")
        logger.info(f"Scanning {train_dir} and {val_dir}")
        return {"train": scan_class_folders(layout, train_dir, train_folders),
                "test": scan_class_folders(layout, val_dir, val_folders)}

    @staticmethod
    def load_preprocessed(layout: Layout) -> Optional[Dict[str, list]]:
        """The cached lists, or None when absent or unusable (unreadable, or naming images that are not
        under the current image folder or do not exist, e.g. after the data root was moved)."""
        path = layout.path(PREPROCESSED)
        if not os.path.exists(path):
            return None
        try:
            data = load_pickle(path)
            lists = {"train": list(data["train"]), "test": list(data["test"])}
        except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, AttributeError, ValueError,
                IndexError) as err:
            logger.warning(f"WARNING: {path} is unreadable ({err!r}); scanning the image folders again")
            return None
        image_root = layout.path("images") + os.sep
        paths = [item.impath for item in chain(lists["train"], lists["test"])]
        outside = next((p for p in paths if not p.startswith(image_root)), None)
        missing = find_missing_files(paths) if outside is None else [outside]
        if missing:
            logger.warning(f"WARNING: {path} names {missing[0]}, which is not an image under {image_root} "
                           "(was the data root moved?); scanning the image folders again")
            return None
        logger.info(f"Loading preprocessed data from {path}")
        return lists

    def build(self, cfg, layout: Layout) -> Tuple[list, list, list]:
        lists = self.load_preprocessed(layout)
        if lists is None:
            lists = self.scan(layout)
            save_pickle(lists, layout.path(PREPROCESSED))
            logger.info(f"Saved preprocessed data to {layout.path(PREPROCESSED)}")
        train, test = lists["train"], lists["test"]
        num_shots = cfg.DATASET.NUM_SHOTS
        if num_shots >= 1:
            train, _ = self.load_or_create_fewshot(self.split_fewshot_dir, num_shots, cfg.SEED, train)
        train, test = self.subsample_classes(train, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        return train, test, test


class ImageNetTestSet(LayoutDataset):
    """An ImageNet test set: train_x and test are the same list of every image, there is no val, and
    DATASET.NUM_SHOTS and SUBSAMPLE_CLASSES are ignored. Labels are indices in the sorted list of the wnid
    folders present, named through ``classnames.txt``."""

    image_folder = ""

    @classmethod
    def read_classnames(cls, layout: Layout) -> Dict[str, str]:
        return ImageNet.read_classnames(layout.path(CLASSNAMES_FILE))

    @classmethod
    def read_lists(cls, layout: Layout) -> Dict[str, list]:
        image_dir = layout.path(cls.image_folder)
        folders = wnid_folders(layout, image_dir, cls.read_classnames(layout))
        return {"test": scan_class_folders(layout, image_dir, folders)}

    def build(self, cfg, layout: Layout) -> Tuple[list, list, list]:
        if cfg.DATASET.NUM_SHOTS >= 1 or cfg.DATASET.SUBSAMPLE_CLASSES != "all":
            logger.info(f"{type(self).__name__} is a test set: DATASET.NUM_SHOTS and DATASET.SUBSAMPLE_CLASSES "
                        "are ignored")
        data = self.read_lists(layout)["test"]
        return data, None, data
