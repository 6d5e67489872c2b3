"""Small file, image, seed and environment helpers (the names of Dassl's ``dassl.utils``)."""
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import uuid

import numpy as np
import torch
from PIL import Image

from ..errors import UserError


def unimplemented(name: str, what: str):
    """A method a subclass must provide; the inherited one says which class lacks it and what it should do."""

    def method(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement {name}(): {what}")

    method.__name__ = method.__qualname__ = name
    method.__doc__ = what
    return method


def mkdir_if_missing(dirname: str) -> None:
    os.makedirs(dirname, exist_ok=True)


#: the temporary file atomic_write writes beside ``<name>`` (a process killed while writing leaves it behind)
TEMPORARY_FILE = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w"):
    """Write to a temporary file beside ``path`` and rename it into place, so readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    mkdir_if_missing(directory)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    # created like open() creates files (0o666 minus the umask); mkstemp would make it private (0o600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_temporary_files(directory: str, depth: int = 1) -> list:
    """Remove the temporary files of interrupted atomic writes in ``directory`` and its sub-folders down to
    ``depth`` levels; the paths removed. Only safe while no other process writes there (see utils/locking.py)."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.is_file(follow_symlinks=False) and TEMPORARY_FILE.match(entry.name):
            os.remove(entry.path)
            removed.append(entry.path)
        elif depth > 0 and entry.is_dir(follow_symlinks=False):
            removed += remove_temporary_files(entry.path, depth - 1)
    return removed


def git_commit(path: str):
    """The commit checked out in the git repository holding ``path``, or None (not a checkout, no git)."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def read_json(fpath: str):
    with open(fpath) as f:
        return json.load(f)


def write_json(obj, fpath: str) -> None:
    """Write JSON with 4-space indent, atomically."""
    with atomic_write(fpath) as f:
        json.dump(obj, f, indent=4, separators=(",", ": "))


def listdir_nohidden(path: str, sort: bool = False) -> list:
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    if sort:
        items.sort()
    return items


def read_image(path: str) -> Image.Image:
    """Open an image as RGB; a missing or unreadable file gives a UserError naming it."""
    if not os.path.exists(path):
        raise UserError(f"image not found: {path}. Check the dataset folder against DATASETS.md.")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path} ({err}). Replace or delete the corrupt file "
                        "(and remove it from the split file).") from None


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def collect_env_info() -> str:
    import PIL
    import torchvision

    lines = [
        f"Python: {sys.version.split()[0]} ({sys.platform})",
        f"PyTorch: {torch.__version__}",
        f"torchvision: {torchvision.__version__}",
        f"Pillow: {PIL.__version__}",
        f"NumPy: {np.__version__}",
        f"CUDA available: {torch.cuda.is_available()}",
    ]
    if torch.cuda.is_available():
        lines.append(f"CUDA: {torch.version.cuda}, cuDNN: {torch.backends.cudnn.version()}")
        for i in range(torch.cuda.device_count()):
            lines.append(f"GPU {i}: {torch.cuda.get_device_name(i)}")
    lines.append(f"CPU threads: {torch.get_num_threads()}")
    return "\n".join(lines)
