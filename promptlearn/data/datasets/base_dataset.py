"""``Datum`` and ``DatasetBase`` (Dassl's ``dassl.data.datasets.base_dataset``), with few-shot sampling,
base/new class subsampling and the few-shot cache files ``split_fewshot/shot_<K>-seed_<S>.pkl``."""
import logging
import math
import os
import pickle
import random
from collections import defaultdict

from ...errors import UserError
from ...utils.tools import atomic_write, mkdir_if_missing
from .image_files import find_missing_files

logger = logging.getLogger(__name__)


class Datum:
    """One labelled image: path, label, domain and class name.

    The attribute names match Dassl's, so pickled few-shot caches written by Dassl load here too
    (see :func:`load_pickle`). Whether the file exists is checked by the reader, once per dataset,
    so that a missing file is reported with the dataset's expected layout.
    """

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = ""):
        if not isinstance(impath, str):
            raise TypeError(f"impath must be a str, got {type(impath).__name__}")
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self) -> str:
        return self._impath

    @property
    def label(self) -> int:
        return self._label

    @property
    def domain(self) -> int:
        return self._domain

    @property
    def classname(self) -> str:
        return self._classname

    def __eq__(self, other) -> bool:
        return isinstance(other, Datum) and (self.impath, self.label, self.domain, self.classname) == (
            other.impath, other.label, other.domain, other.classname)

    def __hash__(self) -> int:
        return hash((self.impath, self.label, self.domain, self.classname))

    def __repr__(self) -> str:
        return f"Datum(impath={self.impath!r}, label={self.label}, classname={self.classname!r})"


class _DasslCompatUnpickler(pickle.Unpickler):
    """Unpickles caches written by Dassl: its ``Datum`` class path maps onto ours."""

    def find_class(self, module, name):
        if name == "Datum" and module.startswith("dassl."):
            return Datum
        return super().find_class(module, name)


def load_pickle(fpath: str):
    with open(fpath, "rb") as f:
        return _DasslCompatUnpickler(f).load()


def save_pickle(obj, fpath: str) -> None:
    with atomic_write(fpath, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def _stale_cache_problem(cached, source):
    """Why a cached few-shot list cannot be reused with ``source`` (the full list it was drawn from), or None."""
    missing = find_missing_files(item.impath for item in cached)
    if missing:
        return f"names an image that does not exist ({missing[0]}; was the data root moved?)"
    current = {item.impath: (item.label, item.classname) for item in source}
    for item in cached:
        if current.get(item.impath) != (item.label, item.classname):
            return f"holds an item that is not in the current split ({item.impath}, label {item.label})"
    return None


def _read_only(attribute: str, doc: str) -> property:
    return property(lambda self: getattr(self, attribute), doc=doc)


def _grouped(data_source, key) -> dict:
    """Items by ``key(item)``: keys in order of first appearance, items in list order."""
    groups = defaultdict(list)
    for item in data_source:
        groups[key(item)].append(item)
    return groups


def _draw(items: list, k: int, repeat: bool) -> list:
    """Dassl's draw from one class (Python's global ``random``, so a seed gives Dassl's picks): k items without
    replacement; a class with fewer than k gives all of them, or k with replacement when ``repeat``."""
    if len(items) >= k:
        return random.sample(items, k)
    return random.choices(items, k=k) if repeat else items


def warn_short_classes(items, num_shots: int, split: str = "training") -> list:
    """Warn about the classes of a few-shot list with fewer than ``num_shots`` items (Dassl's draw gives all the
    images of such a class); their ``(class name, count)``."""
    counts = {}
    for item in items:
        counts[item.classname] = counts.get(item.classname, 0) + 1
    short = [(name, n) for name, n in counts.items() if n < num_shots]
    if short:
        listed = ", ".join(f"{name} ({n})" for name, n in short[:10]) + (", ..." if len(short) > 10 else "")
        logger.warning(f"WARNING: DATASET.NUM_SHOTS is {num_shots}, but {len(short)} of {len(counts)} classes have "
                       f"fewer {split} images, and all of theirs are used (as Dassl does): {listed}")
    return short


class DatasetBase:
    """A dataset as lists of ``Datum``: ``train_x`` (labelled training items), ``train_u`` (unlabelled; no reader
    here has any), ``val`` and ``test``, with the class names of ``train_x``'s labels."""

    dataset_dir = ""  # folder name under DATASET.ROOT
    domains = []

    train_x = _read_only("_train_x", "labelled training items")
    train_u = _read_only("_train_u", "unlabelled training items")
    val = _read_only("_val", "validation items (None or empty without a validation split)")
    test = _read_only("_test", "test items")
    lab2cname = _read_only("_lab2cname", "label -> class name")
    classnames = _read_only("_classnames", "class names in label order")
    num_classes = _read_only("_num_classes", "largest label of train_x + 1")

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self._train_x, self._train_u, self._val, self._test = train_x, train_u, val, test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @staticmethod
    def get_num_classes(data_source) -> int:
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source):
        """({label: class name} of the items present, class names ordered by label)."""
        names = {item.label: item.classname for item in data_source}
        ordered = sorted(names)
        return {label: names[label] for label in ordered}, [names[label] for label in ordered]

    @staticmethod
    def split_dataset_by_label(data_source) -> dict:
        return _grouped(data_source, lambda item: item.label)

    @staticmethod
    def split_dataset_by_domain(data_source) -> dict:
        return _grouped(data_source, lambda item: item.domain)

    def generate_fewshot_dataset(self, *data_sources, num_shots: int = -1, repeat: bool = False):
        """``num_shots`` items of every class of each source (Dassl's algorithm: the classes in order of first
        appearance, each drawn with ``_draw``); the sources as they are when ``num_shots`` < 1."""
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        logger.info(f"Drawing {num_shots} images per class")
        drawn = [[item for items in self.split_dataset_by_label(source).values()
                  for item in _draw(items, num_shots, repeat)] for source in data_sources]
        return drawn[0] if len(drawn) == 1 else drawn

    def load_or_create_fewshot(self, cache_dir: str, num_shots: int, seed: int, train, val=None):
        """Few-shot train (K per class) and val (min(K, 4) per class), cached in ``cache_dir``.

        The cache ``shot_<K>-seed_<S>.pkl`` holds the lists before class subsampling, so base, new and
        all share it. It is written atomically. A cache that is unreadable, names an image that does not
        exist (its paths are absolute, so a moved data root breaks it) or holds items that are not in the
        current lists is regenerated with a warning.
        With ``val=None`` (ImageNet) only train is sampled and cached. Classes with fewer than K training images
        give all of them, with a warning naming them and their counts.
        """
        mkdir_if_missing(cache_dir)
        fpath = os.path.join(cache_dir, f"shot_{num_shots}-seed_{seed}.pkl")
        if os.path.exists(fpath):
            try:
                data = load_pickle(fpath)
                cached_train, cached_val = data["train"], data.get("val")
                if val is not None and cached_val is None:
                    raise KeyError("val")
            except Exception as err:  # a damaged pickle can fail in many ways (ImportError, OverflowError, ...)
                logger.warning(f"WARNING: few-shot cache {fpath} is unreadable ({err!r}); regenerating it")
            else:
                problem = _stale_cache_problem(cached_train, train)
                if problem is None and val is not None:
                    problem = _stale_cache_problem(cached_val, val)
                if problem is None:
                    logger.info(f"Few-shot lists read from {fpath}")
                    warn_short_classes(cached_train, num_shots)
                    return cached_train, (cached_val if val is not None else None)
                logger.warning(f"WARNING: few-shot cache {fpath} {problem}; regenerating it")
        train = self.generate_fewshot_dataset(train, num_shots=num_shots)
        data = {"train": train}
        if val is not None:
            val = self.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
            data["val"] = val
        logger.info(f"Few-shot lists drawn and saved to {fpath}")
        save_pickle(data, fpath)
        warn_short_classes(train, num_shots)
        return train, val

    def fewshot_and_subsample(self, cfg, train, val, test, cache_dir: str):
        """The readers' common last steps: few-shot train/val (cached per shots and seed), then base/new."""
        num_shots = cfg.DATASET.NUM_SHOTS
        if num_shots >= 1:
            train, val = self.load_or_create_fewshot(cache_dir, num_shots, cfg.SEED, train, val)
        return self.subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)

    @staticmethod
    def subsample_classes(*args, subsample: str = "all"):
        """Keep the base (lower ceil(n/2)) or new (upper) half of the labels present in ``args[0]``.

        Kept labels are relabeled 0..n-1 in ascending order; every list is filtered to them.
        ``"all"`` returns the inputs unchanged.
        """
        if subsample not in ("all", "base", "new"):
            raise UserError(f'DATASET.SUBSAMPLE_CLASSES must be "all", "base" or "new", got "{subsample}"')
        if subsample == "all":
            return args
        labels = sorted({item.label for item in args[0]})
        m = math.ceil(len(labels) / 2)
        selected = labels[:m] if subsample == "base" else labels[m:]
        logger.info(f"Classes: the {subsample} half ({len(selected)} of {len(labels)})")
        relabeler = {y: y_new for y_new, y in enumerate(selected)}
        output = []
        for dataset in args:
            output.append([
                Datum(impath=item.impath, label=relabeler[item.label], domain=item.domain, classname=item.classname)
                for item in dataset if item.label in relabeler
            ])
        return output
