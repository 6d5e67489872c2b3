"""What each reader expects under ``<root>/<dataset_dir>`` (its pieces), the errors that point to the
dataset's section of DATASETS.md, and the read-or-generate flow shared by the split-file readers.

The one home of the data layout helpers: the readers (``datasets/``), the data check and the download
command all describe a dataset's files with ``Piece`` and find them with ``Layout``."""
import logging
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from ...errors import UserError
from .base_dataset import DatasetBase
from .image_files import check_images_exist
from .splits import read_split, save_split

logger = logging.getLogger(__name__)

#: the command that fetches what a dataset publishes (``datasets/__main__.py``)
DOWNLOAD_COMMAND = "python -m datasets download"

DOCS = "DATASETS.md"

REQUIRED = "required"  # read on every run
SPLIT = "split"  # the published split file; generated from the "source" pieces when absent
SOURCE = "source"  # needed only to generate the split file


@dataclass(frozen=True)
class Piece:
    """One file or folder a reader expects, relative to the dataset folder."""

    relpath: str
    what: str
    is_dir: bool = False
    role: str = REQUIRED

    @property
    def description(self) -> str:
        return f"{self.what} {'folder' if self.is_dir else 'file'}"


class Layout:
    """The absolute paths of one dataset's pieces under a data root."""

    def __init__(self, name: str, dataset_dir: str, pieces: Iterable[Piece], root: str):
        if not root:
            raise UserError(f"{name}: no data root given; pass --root DATA (the folder that holds "
                            f"{dataset_dir}/); see {DOCS}#{name.lower()}")
        self.name = name
        self.root = os.path.abspath(os.path.expanduser(root))
        self.dataset_dir = os.path.join(self.root, dataset_dir)
        self.pieces = tuple(pieces)

    @classmethod
    def of(cls, reader: type, root: str) -> "Layout":
        return cls(reader.__name__, reader.dataset_dir, reader.pieces, root)

    @property
    def hint(self) -> str:
        return f"see {DOCS}#{self.name.lower()}"

    def path(self, relpath: str) -> str:
        return os.path.join(self.dataset_dir, relpath) if relpath else self.dataset_dir

    def error(self, message: str) -> UserError:
        return UserError(f"{self.name}: {message}; {self.hint}")

    def exists(self, piece: Piece) -> bool:
        path = self.path(piece.relpath)
        return os.path.isdir(path) if piece.is_dir else os.path.isfile(path)

    @property
    def split_piece(self) -> Optional[Piece]:
        return next((piece for piece in self.pieces if piece.role == SPLIT), None)

    def split_file_exists(self) -> bool:
        piece = self.split_piece
        return piece is not None and self.exists(piece)

    def needed(self) -> List[Piece]:
        """The pieces a build needs now: the split's sources count only while the split file is absent."""
        if self.split_file_exists():
            return [piece for piece in self.pieces if piece.role != SOURCE]
        return list(self.pieces)

    def missing(self) -> List[Piece]:
        """Needed pieces that are absent; an absent split file counts only if it cannot be generated."""
        absent = [piece for piece in self.needed() if not self.exists(piece)]
        if any(piece.role == SOURCE for piece in absent):
            return absent
        return [piece for piece in absent if piece.role != SPLIT]

    def require(self) -> None:
        """Raise one UserError for a missing root, dataset folder or piece, naming the expected path."""
        if not os.path.isdir(self.root):
            raise self.error(f"data root {self.root} does not exist (set it with --root)")
        if not os.path.isdir(self.dataset_dir):
            raise self.error(f"dataset folder {self.dataset_dir} not found")
        missing = self.missing()
        required = [piece for piece in missing if piece.role == REQUIRED]
        if required:
            first = required[0]
            raise self.error(f"{first.description} {self.path(first.relpath)} not found")
        sources = [piece for piece in missing if piece.role == SOURCE]
        if sources:
            first = sources[0]
            raise self.error(f"split file {self.path(self.split_piece.relpath)} not found, and it cannot be generated "
                             f"because the {first.description} {self.path(first.relpath)} is missing too "
                             f"(download the split file with: {DOWNLOAD_COMMAND} --root {self.root} "
                             f"--dataset {self.name} --splits-only)")


def read_or_generate_split(layout: Layout, image_dir: str,
                           generate: Callable[[], Tuple[list, list, list]]) -> Tuple[list, list, list]:
    """Read the split file (paths relative to ``image_dir``), or generate it with ``generate`` and save it.

    Every listed image must exist; this is checked once, before a generated split is saved.
    """
    split_path = layout.path(layout.split_piece.relpath)
    generated = not os.path.isfile(split_path)
    if not generated:
        train, val, test = read_split(split_path, image_dir)
        source = split_path
    else:
        sources = [layout.path(piece.relpath) for piece in layout.pieces if piece.role == SOURCE] or [image_dir]
        logger.warning(f"WARNING: {split_path} not found: generating a new split from {', '.join(sources)}. It will "
                       "differ from the published split; download that one with "
                       f"{DOWNLOAD_COMMAND} --root {layout.root} --dataset {layout.name} --splits-only")
        train, val, test = generate()
        source = "the generated split"
    check_images_exist(train, val, test, source=source, hint=layout.hint)
    if generated:
        save_split(train, val, test, split_path, image_dir)
    return train, val, test


class LayoutDataset(DatasetBase):
    """A reader whose files are described by ``pieces`` under ``<DATASET.ROOT>/<dataset_dir>``.

    ``read_lists(layout)`` returns the full lists by split name and writes nothing once the split file
    exists (the data-check command counts them); ``build`` turns them into train_x, val and test.
    """

    dataset_dir = ""
    pieces: Tuple[Piece, ...] = ()

    def __init__(self, cfg):
        layout = Layout.of(type(self), cfg.DATASET.ROOT)
        layout.require()
        self.dataset_dir = layout.dataset_dir
        self.split_fewshot_dir = layout.path("split_fewshot")
        train_x, val, test = self.build(cfg, layout)
        super().__init__(train_x=train_x, val=val, test=test)

    @classmethod
    def read_lists(cls, layout: Layout) -> Dict[str, list]:
        raise NotImplementedError

    def build(self, cfg, layout: Layout) -> Tuple[list, list, list]:
        """The reference's steps: full lists, few-shot train and val (cached), then base/new classes."""
        lists = self.read_lists(layout)
        return self.fewshot_and_subsample(cfg, lists["train"], lists["val"], lists["test"], self.split_fewshot_dir)


class SplitFileDataset(LayoutDataset):
    """A reader of a CoOp split file ``split_zhou_<Name>.json`` whose paths are relative to ``image_folder``.

    When the split file is absent, ``generate_split`` makes one from the raw layout and it is saved.
    """

    image_folder = ""

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        raise NotImplementedError

    @classmethod
    def read_lists(cls, layout: Layout) -> Dict[str, list]:
        train, val, test = read_or_generate_split(layout, layout.path(cls.image_folder),
                                                  lambda: cls.generate_split(layout))
        return {"train": train, "val": val, "test": test}


def read_text_lines(layout: Layout, relpath: str) -> List[str]:
    """The stripped, non-empty lines of a text file of the dataset (CRLF endings included)."""
    path = layout.path(relpath)
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        raise layout.error(f"file {path} not found") from None
