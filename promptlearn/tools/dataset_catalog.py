"""The public datasets the data tools know, and how a name typed on their command line is resolved.

The readers themselves are application code (the repository's ``datasets`` package): they register in
``DATASET_REGISTRY`` when the application imports them, and the tools look them up there. Nothing here
imports the application or needs to know where it lives; ``python -m datasets`` is the entry point that
imports the readers and passes the folder of the dataset configs.
"""
import os
from typing import Dict, List, Optional

import yaml

from ..data.datasets import DATASET_REGISTRY
from ..errors import UserError

# The 11 base-to-new datasets, then the 4 ImageNet test sets (the order the tools report them in).
DATASET_NAMES = ("ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "Food101", "FGVCAircraft",
                 "SUN397", "DescribableTextures", "EuroSAT", "UCF101", "ImageNetV2", "ImageNetSketch", "ImageNetA",
                 "ImageNetR")


def reader_class(name: str) -> type:
    """The registered reader of dataset ``name``; a UserError when the readers have not been imported."""
    if name not in DATASET_REGISTRY:
        raise UserError(f"no reader is registered for {name}: the data tools run through the application, which "
                        "imports the readers; run python -m datasets check (or download) from the repository root")
    return DATASET_REGISTRY.get(name)


def config_aliases(config_dir: Optional[str]) -> Dict[str, str]:
    """Lower-case stems of the dataset configs in ``config_dir`` -> the DATASET.NAME they set (``dtd`` ->
    ``DescribableTextures``); empty without a folder."""
    aliases = {}
    if not config_dir or not os.path.isdir(config_dir):
        return aliases
    for fname in sorted(os.listdir(config_dir)):
        stem, ext = os.path.splitext(fname)
        if ext != ".yaml":
            continue
        with open(os.path.join(config_dir, fname)) as f:
            name = (yaml.safe_load(f) or {}).get("DATASET", {}).get("NAME")
        if name in DATASET_NAMES:
            aliases[stem.lower()] = name
    return aliases


def resolve_names(text: str = "", config_dir: Optional[str] = None) -> List[str]:
    """``""`` -> every dataset; otherwise the one dataset named ``text`` (case-insensitive), by DATASET.NAME or
    by the stem of its config file in ``config_dir``."""
    if not text:
        return list(DATASET_NAMES)
    lookup = {name.lower(): name for name in DATASET_NAMES}
    lookup.update(config_aliases(config_dir))
    name = lookup.get(text.lower())
    if name is None:
        raise UserError(f'unknown dataset "{text}"; choose one of {", ".join(DATASET_NAMES)} '
                        "(or a configs/datasets/<name>.yaml stem)")
    return [name]
