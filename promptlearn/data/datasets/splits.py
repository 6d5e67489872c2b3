"""CoOp's split-file helpers, shared by every reader: ``split_zhou_<Name>.json`` read/write,
the 80/20 train/val split and the 50/20/30 split of a folder of class folders."""
import logging
import os
import random
from collections import defaultdict

from ...errors import UserError
from ...utils.tools import listdir_nohidden, read_json, write_json
from .base_dataset import Datum

logger = logging.getLogger(__name__)


def read_split(filepath: str, path_prefix: str):
    """Read ``{"train"|"val"|"test": [[relative path, label, classname], ...]}`` into Datum lists."""
    logger.info(f"Split file: {filepath}")
    try:
        split = read_json(filepath)
    except ValueError as err:
        raise UserError(f"split file {filepath} is not valid JSON ({err}); download it again.") from None

    def _convert(items):
        return [Datum(impath=os.path.join(path_prefix, impath), label=int(label), classname=classname)
                for impath, label, classname in items]

    try:
        return _convert(split["train"]), _convert(split["val"]), _convert(split["test"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f'split file {filepath} does not have the expected "train"/"val"/"test" lists of '
                        f"[path, label, classname] ({err!r}); download it again.") from None


def save_split(train, val, test, filepath: str, path_prefix: str) -> None:
    """Write a split file with paths relative to ``path_prefix``."""

    def _extract(items):
        out = []
        for item in items:
            impath = item.impath.replace(path_prefix, "")
            if impath.startswith("/"):
                impath = impath[1:]
            out.append((impath, item.label, item.classname))
        return out

    write_json({"train": _extract(train), "val": _extract(val), "test": _extract(test)}, filepath)
    logger.info(f"Split file written: {filepath}")


def split_trainval(trainval, p_val: float = 0.2):
    """Split per label: round(p_val * n) shuffled items to val, the rest to train."""
    p_trn = 1 - p_val
    logger.info(f"Holding out {p_val:.0%} of each class's trainval images for validation ({p_trn:.0%} train)")
    tracker = defaultdict(list)
    for idx, item in enumerate(trainval):
        tracker[item.label].append(idx)
    train, val = [], []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val <= 0:
            raise UserError(f"class {label} has too few images ({len(idxs)}) to hold out a validation image")
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            item = trainval[idx]
            (val if n < n_val else train).append(item)
    return train, val


def split_by_percentage(groups, p_trn: float = 0.5, p_val: float = 0.2):
    """Split each class's images into train/val/test: the reference's per-class 50/20/30 rule.

    ``groups`` holds ``(label, classname, impaths)`` in the order to process. Each list of impaths is
    shuffled in place with Python's ``random``; round(p_trn * n) go to train, round(p_val * n) to val and
    the rest to test, and every part must be non-empty.
    """
    p_tst = 1 - p_trn - p_val
    logger.info(f"Dividing each class's images {p_trn:.0%} / {p_val:.0%} / {p_tst:.0%} into train / val / test")

    def _collate(ims, y, c):
        return [Datum(impath=im, label=y, classname=c) for im in ims]

    train, val, test = [], [], []
    for label, classname, impaths in groups:
        random.shuffle(impaths)
        n_total = len(impaths)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        n_test = n_total - n_train - n_val
        if not (n_train > 0 and n_val > 0 and n_test > 0):
            where = f" ({os.path.dirname(impaths[0])})" if impaths else ""
            raise UserError(f'class "{classname}"{where} has {n_total} images: too few to split into '
                            "train, val and test (at least 4 are needed)")
        train.extend(_collate(impaths[:n_train], label, classname))
        val.extend(_collate(impaths[n_train:n_train + n_val], label, classname))
        test.extend(_collate(impaths[n_train + n_val:], label, classname))
    return train, val, test


def read_and_split_data(image_dir: str, p_trn: float = 0.5, p_val: float = 0.2, ignored=(), new_cnames=None):
    """Split every class folder of ``image_dir`` into train/val/test (50/20/30 by default).

    Categories are the sorted folder names minus ``ignored``; the label is the index in that list, and
    ``new_cnames`` maps a folder name to its class name.
    """
    categories = sorted(c for c in listdir_nohidden(image_dir) if c not in ignored)
    groups = []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        # sorted so that a generated split does not depend on the file system's listing order
        images = [os.path.join(category_dir, im) for im in listdir_nohidden(category_dir, sort=True)]
        classname = new_cnames.get(category, category) if new_cnames else category
        groups.append((label, classname, images))
    return split_by_percentage(groups, p_trn=p_trn, p_val=p_val)
