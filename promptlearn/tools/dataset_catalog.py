"""The dataset readers as the command-line tools see them: the repository's ``datasets`` package, looked up
by registry name (``Caltech101``) or by the stem of its config file (``caltech101``, ``dtd``)."""
import importlib
import os
import sys
from typing import List

import yaml

from ..errors import UserError
from ..utils.registry import Registry

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATASET_CONFIG_DIR = os.path.join(REPO_ROOT, "configs", "datasets")

# The 11 base-to-new datasets, then the 4 ImageNet test sets (the order the tools report them in).
DATASET_NAMES = ("ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "Food101", "FGVCAircraft",
                 "SUN397", "DescribableTextures", "EuroSAT", "UCF101", "ImageNetV2", "ImageNetSketch", "ImageNetA",
                 "ImageNetR")


def import_readers() -> Registry:
    """Import the repository's ``datasets`` package (it registers the readers) and return the registry."""
    package_dir = os.path.join(REPO_ROOT, "datasets")
    if not os.path.isfile(os.path.join(package_dir, "__init__.py")):
        raise UserError(f"the dataset readers are expected in {package_dir}; run this command from a checkout of "
                        "the repository")
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    module = importlib.import_module("datasets")
    if os.path.dirname(os.path.abspath(module.__file__)) != package_dir:
        raise UserError(f"another package named datasets ({module.__file__}) shadows the dataset readers in "
                        f"{package_dir}")
    from ..data.datasets import DATASET_REGISTRY

    return DATASET_REGISTRY


def _config_aliases() -> dict:
    aliases = {}
    if os.path.isdir(DATASET_CONFIG_DIR):
        for fname in sorted(os.listdir(DATASET_CONFIG_DIR)):
            stem, ext = os.path.splitext(fname)
            if ext == ".yaml":
                with open(os.path.join(DATASET_CONFIG_DIR, fname)) as f:
                    name = (yaml.safe_load(f) or {}).get("DATASET", {}).get("NAME")
                if name in DATASET_NAMES:
                    aliases[stem.lower()] = name
    return aliases


def resolve_names(text: str = "") -> List[str]:
    """``""`` -> every dataset; otherwise the one dataset named ``text`` (case-insensitive)."""
    if not text:
        return list(DATASET_NAMES)
    lookup = {name.lower(): name for name in DATASET_NAMES}
    lookup.update(_config_aliases())
    name = lookup.get(text.lower())
    if name is None:
        raise UserError(f'unknown dataset "{text}"; choose one of {", ".join(DATASET_NAMES)} '
                        "(or a configs/datasets/<name>.yaml stem)")
    return [name]


def reader_class(name: str) -> type:
    return import_readers().get(name)
