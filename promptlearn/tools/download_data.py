"""Download what a dataset publishes as direct downloads: CoOp's split files and class lists (Google Drive)
and the image archives that have public links. Archives are checked, extracted into the layout the readers
expect, then deleted; an interrupted download resumes where it stopped.

    python -m datasets download --root DATA --dataset NAME [--splits-only]      (from the repository root)

What cannot be fetched this way (ImageNet's images, ImageNet-Sketch) is printed as a manual step; see
DATASETS.md for every dataset's sources and layout.
"""
import argparse
import json
import os
import shutil
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from typing import Tuple
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import gdown
from scipy.io import loadmat
from tqdm import tqdm

from ..errors import UserError
from .dataset_catalog import reader_class, resolve_names

CHUNK = 1 << 20
CLASSNAMES_GDRIVE_ID = "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class DownloadError(UserError):
    """A download or a check of what was downloaded failed."""


@dataclass(frozen=True)
class Item:
    """One published file, saved as ``<dataset folder>/<filename>``."""

    filename: str
    url: str = ""
    gdrive_id: str = ""
    split: bool = False  # a split file or class list: what --splits-only fetches
    # for an archive: (path inside the archive, path under the dataset folder) to move into place
    extract: Tuple[Tuple[str, str], ...] = ()

    @property
    def source(self) -> str:
        return self.url or f"Google Drive id {self.gdrive_id}"


@dataclass(frozen=True)
class Sources:
    items: Tuple[Item, ...]
    manual: str = ""  # what has to be fetched by hand


def _same(*paths: str) -> Tuple[Tuple[str, str], ...]:
    return tuple((path, path) for path in paths)


def _classnames() -> Item:
    return Item("classnames.txt", gdrive_id=CLASSNAMES_GDRIVE_ID, split=True)


VGG = "https://www.robots.ox.ac.uk/~vgg/data"
STANFORD = "http://ai.stanford.edu/~jkrause"
SOURCES = {
    "ImageNet": Sources(
        (_classnames(),),
        manual="the ILSVRC-2012 train and val images (https://image-net.org/index.php, registration needed), "
               "arranged as images/train/<wnid>/ and images/val/<wnid>/"),
    "Caltech101": Sources((
        Item("101_ObjectCategories.tar.gz",
             url="http://www.vision.caltech.edu/Image_Datasets/Caltech101/101_ObjectCategories.tar.gz",
             extract=_same("101_ObjectCategories")),
        Item("split_zhou_Caltech101.json", gdrive_id="1hyarUivQE36mY6jSomru6Fjd-JzwcCzN", split=True),
    )),
    "OxfordPets": Sources((
        Item("images.tar.gz", url=f"{VGG}/pets/data/images.tar.gz", extract=_same("images")),
        Item("annotations.tar.gz", url=f"{VGG}/pets/data/annotations.tar.gz", extract=_same("annotations")),
        Item("split_zhou_OxfordPets.json", gdrive_id="1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs", split=True),
    )),
    "StanfordCars": Sources((
        Item("cars_train.tgz", url=f"{STANFORD}/car196/cars_train.tgz", extract=_same("cars_train")),
        Item("cars_test.tgz", url=f"{STANFORD}/car196/cars_test.tgz", extract=_same("cars_test")),
        Item("car_devkit.tgz", url="https://ai.stanford.edu/~jkrause/cars/car_devkit.tgz", extract=_same("devkit")),
        Item("cars_test_annos_withlabels.mat", url=f"{STANFORD}/car196/cars_test_annos_withlabels.mat"),
        Item("split_zhou_StanfordCars.json", gdrive_id="1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT", split=True),
    )),
    "OxfordFlowers": Sources((
        Item("102flowers.tgz", url=f"{VGG}/flowers/102/102flowers.tgz", extract=_same("jpg")),
        Item("imagelabels.mat", url=f"{VGG}/flowers/102/imagelabels.mat"),
        Item("cat_to_name.json", gdrive_id="1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0", split=True),
        Item("split_zhou_OxfordFlowers.json", gdrive_id="1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT", split=True),
    )),
    "Food101": Sources((
        Item("food-101.tar.gz", url="http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
             extract=(("food-101/images", "images"), ("food-101/meta", "meta"))),
        Item("split_zhou_Food101.json", gdrive_id="1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl", split=True),
    )),
    "FGVCAircraft": Sources((
        Item("fgvc-aircraft-2013b.tar.gz", url=f"{VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
             extract=tuple((f"fgvc-aircraft-2013b/data/{name}", name) for name in (
                 "images", "variants.txt", "images_variant_train.txt", "images_variant_val.txt",
                 "images_variant_test.txt"))),
    )),
    "SUN397": Sources((
        Item("SUN397.tar.gz", url="http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz",
             extract=_same("SUN397")),
        Item("Partitions.zip", url="https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip",
             extract=_same("ClassName.txt", "Training_01.txt", "Testing_01.txt")),
        Item("split_zhou_SUN397.json", gdrive_id="1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq", split=True),
    )),
    "DescribableTextures": Sources((
        Item("dtd-r1.0.1.tar.gz", url=f"{VGG}/dtd/download/dtd-r1.0.1.tar.gz",
             extract=(("dtd/images", "images"), ("dtd/labels", "labels"), ("dtd/imdb", "imdb"))),
        Item("split_zhou_DescribableTextures.json", gdrive_id="1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x", split=True),
    )),
    "EuroSAT": Sources((
        Item("EuroSAT.zip", url="http://madm.dfki.de/files/sentinel/EuroSAT.zip", extract=_same("2750")),
        Item("split_zhou_EuroSAT.json", gdrive_id="1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o", split=True),
    )),
    "UCF101": Sources((
        Item("UCF-101-midframes.zip", gdrive_id="10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O",
             extract=_same("UCF-101-midframes")),
        Item("split_zhou_UCF101.json", gdrive_id="1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y", split=True),
    )),
    "ImageNetV2": Sources((
        Item("imagenetv2-matched-frequency.tar.gz",
             url="https://s3-us-west-2.amazonaws.com/imagenetv2public/imagenetv2-matched-frequency.tar.gz",
             extract=_same("imagenetv2-matched-frequency-format-val")),
        _classnames(),
    )),
    "ImageNetSketch": Sources(
        (_classnames(),),
        manual="the images from https://github.com/HaohanWang/ImageNet-Sketch, arranged as images/<wnid>/"),
    "ImageNetA": Sources((
        Item("imagenet-a.tar", url="https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar",
             extract=_same("imagenet-a")),
        _classnames(),
    )),
    "ImageNetR": Sources((
        Item("imagenet-r.tar", url="https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar",
             extract=_same("imagenet-r")),
        _classnames(),
    )),
}


def fetch_url(url: str, dest: str) -> None:
    """Download ``url`` to ``dest`` through ``dest + ".part"``; an existing part is continued with an HTTP
    range request (or restarted if the server ignores the range)."""
    part = dest + ".part"
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "promptlearn-download-data"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with urlopen(Request(url, headers=headers), timeout=60) as response:
            if offset and response.status != 206:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            with open(part, "ab" if offset else "wb") as f, \
                    tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=os.path.basename(dest)) as bar:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.update(len(chunk))
            if total is not None and os.path.getsize(part) < total:
                raise DownloadError(f"the transfer of {url} ended early ({os.path.getsize(part):,} of {total:,} "
                                    "bytes); run the command again to resume it")
    except HTTPError as err:
        if not (err.code == 416 and offset):  # 416 on a range request: the part is already complete
            raise DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except (URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {url} ({reason}); the network looks unreachable. Check the "
                            f"connection and run the command again (a partial file resumes), or fetch the file by "
                            f"hand and save it as {dest}") from None
    os.replace(part, dest)


def fetch_gdrive(file_id: str, dest: str) -> None:
    """Download a Google Drive file with gdown, resuming a partial download."""
    by_hand = f"or fetch https://drive.google.com/uc?id={file_id} by hand and save it as {dest}"
    try:
        result = gdown.download(id=file_id, output=dest, quiet=False, resume=True)
    except OSError as err:
        raise DownloadError(f"cannot reach Google Drive for file {file_id} ({type(err).__name__}); the network looks "
                            f"unreachable. Check the connection and run the command again, {by_hand}") from None
    except gdown.exceptions.FileURLRetrievalError as err:
        raise DownloadError(f"Google Drive refused file {file_id} ({str(err).strip().splitlines()[0]}); try again "
                            f"later, {by_hand}") from None
    if result is None or not os.path.isfile(dest):
        raise DownloadError(f"cannot download Google Drive file {file_id}; try again later, {by_hand}")


def is_archive(filename: str) -> bool:
    return filename.endswith(ARCHIVE_SUFFIXES)


def verify(path: str) -> None:
    """Check a downloaded file: non-empty, and a JSON, .mat, text file or archive that opens."""
    if os.path.getsize(path) == 0:
        raise DownloadError(f"{path} is empty")
    try:
        if path.endswith(".json"):
            with open(path) as f:
                json.load(f)
        elif path.endswith(".mat"):
            loadmat(path)
        elif path.endswith(".txt"):
            with open(path) as f:
                if not f.read().strip():
                    raise ValueError("no text")
        elif path.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        elif is_archive(path):
            with tarfile.open(path) as archive:
                archive.next()
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise DownloadError(f"{path} is not a valid {os.path.splitext(path)[1]} file ({err}); it may be an "
                            "error page (e.g. Google Drive's quota notice). Delete it and try again later") from None


def _extract_all(path: str, dest: str) -> None:
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:  # zipfile drops absolute and ".." components itself
            archive.extractall(dest)
        return
    with tarfile.open(path) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, filter="data")
            return
        for member in archive.getmembers():
            target = os.path.realpath(os.path.join(dest, member.name))
            if not target.startswith(os.path.realpath(dest) + os.sep) or member.issym() or member.islnk():
                raise DownloadError(f"{path} has an unsafe member {member.name!r}; not extracting it")
        archive.extractall(dest)


def _locate(staging: str, inner: str) -> str:
    """``inner`` inside the extracted archive, also when the archive nests it one or more folders deeper."""
    direct = os.path.join(staging, inner)
    if os.path.exists(direct):
        return direct
    parts = tuple(inner.split("/"))
    for folder, dirnames, filenames in os.walk(staging):
        for name in dirnames + filenames:
            candidate = os.path.join(folder, name)
            if tuple(os.path.relpath(candidate, staging).split(os.sep))[-len(parts):] == parts:
                return candidate
    return ""


def extract(item: Item, archive_path: str, dataset_dir: str) -> None:
    """Extract into a staging folder, move the listed paths into place, then delete staging and archive."""
    staging = os.path.join(dataset_dir, f".extract-{item.filename}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _extract_all(archive_path, staging)
        for inner, relpath in item.extract:
            target = os.path.join(dataset_dir, relpath)
            if os.path.exists(target):
                continue
            found = _locate(staging, inner)
            if not found:
                raise DownloadError(f"{archive_path} does not contain {inner}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(found, target)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise DownloadError(f"cannot extract {archive_path} ({err}); delete it and run the command again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    os.remove(archive_path)


def targets(item: Item, dataset_dir: str) -> list:
    relpaths = [relpath for _, relpath in item.extract] or [item.filename]
    return [os.path.join(dataset_dir, relpath) for relpath in relpaths]


def local_classnames(root: str, dest: str) -> bool:
    """Copy ``imagenet/classnames.txt`` when the data root already has it (the variants use the same file)."""
    source = os.path.join(root, "imagenet", "classnames.txt")
    if os.path.basename(dest) != "classnames.txt" or not os.path.isfile(source) or os.path.abspath(source) == dest:
        return False
    shutil.copyfile(source, dest)
    return True


def download_item(item: Item, dataset_dir: str, root: str) -> None:
    if all(os.path.exists(path) for path in targets(item, dataset_dir)):
        print(f"  already there: {', '.join(targets(item, dataset_dir))}")
        return
    dest = os.path.join(dataset_dir, item.filename)
    if os.path.isfile(dest):
        print(f"  using the earlier download {dest}")
    elif local_classnames(root, dest):
        print(f"  copied {os.path.join(root, 'imagenet', 'classnames.txt')} to {dest}")
    else:
        print(f"  fetching {item.filename} from {item.source}")
        if item.url:
            fetch_url(item.url, dest)
        else:
            fetch_gdrive(item.gdrive_id, dest)
    try:
        verify(dest)
    except DownloadError:
        os.remove(dest)
        raise
    if item.extract:
        print(f"  extracting {item.filename}")
        extract(item, dest, dataset_dir)
    print(f"  saved {', '.join(targets(item, dataset_dir))}")


def download_dataset(name: str, root: str, splits_only: bool = False) -> None:
    reader = reader_class(name)
    dataset_dir = os.path.join(root, reader.dataset_dir)
    sources = SOURCES[name]
    os.makedirs(dataset_dir, exist_ok=True)
    print(f"{name} -> {dataset_dir}")
    items = [item for item in sources.items if item.split or not splits_only]
    if not items:
        print("  nothing to fetch with --splits-only: the split lists come inside the image archive")
    for item in items:
        download_item(item, dataset_dir, root)
    if sources.manual and not splits_only:
        print(f"  to fetch by hand: {sources.manual} (see DATASETS.md#{name.lower()})")


def main(argv=None, config_dir=None) -> int:
    """The command line; ``config_dir`` (the dataset configs) lets ``--dataset`` take a config file's stem."""
    parser = argparse.ArgumentParser(prog="python -m datasets download", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the data root (each dataset goes to ROOT/<its folder>)")
    parser.add_argument("--dataset", required=True, help="registry name or config stem, e.g. Caltech101 or dtd")
    parser.add_argument("--splits-only", action="store_true", help="fetch only the split files and class lists")
    args = parser.parse_args(argv)
    root = os.path.abspath(os.path.expanduser(args.root))
    try:
        for name in resolve_names(args.dataset, config_dir):
            download_dataset(name, root, splits_only=args.splits_only)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"Done. Check the result with: python -m datasets check --root {root} --dataset {args.dataset}")
    return 0
