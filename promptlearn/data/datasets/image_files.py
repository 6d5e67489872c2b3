"""Existence checks for the images a dataset lists, done once per dataset build. Each folder is listed once,
so a check over ImageNet's 1.3 million paths costs a few thousand directory reads, not a stat per image."""
import os
from collections import Counter
from typing import Iterable, List

from ...errors import UserError


def _folder_and_name(path: str):
    folder, sep, name = path.rpartition(os.sep)
    if not sep:
        return ".", path
    return folder or os.sep, name


def find_missing_files(paths: Iterable[str]) -> List[str]:
    """The paths whose file name is not in a listing of their folder, in input order."""
    listings = {}
    missing = []
    for path in paths:
        folder, name = _folder_and_name(path)
        names = listings.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            listings[folder] = names
        if name not in names:
            missing.append(path)
    return missing


def check_images_exist(*data_sources, source: str, hint: str = "") -> None:
    """Raise one ``UserError`` if an item of ``data_sources`` (lists of Datum) points to a missing image.

    The message names the first missing path, how many are missing, and every class none of whose images
    exist (so a whole missing class folder is reported by name rather than dropped). ``source`` says where
    the list came from (e.g. the split file); ``hint`` is appended (e.g. where the layout is documented).
    """
    items = [item for data_source in data_sources for item in data_source]
    missing = find_missing_files(item.impath for item in items)
    if not missing:
        return
    missing_set = set(missing)
    total = Counter(item.classname for item in items)
    absent = Counter(item.classname for item in items if item.impath in missing_set)
    empty_classes = [name for name in total if absent[name] == total[name]]
    message = f"{len(missing):,} of {len(items):,} images listed in {source} do not exist, the first being {missing[0]}"
    if empty_classes:
        shown = ", ".join(f'"{name}"' for name in empty_classes[:10])
        more = f" and {len(empty_classes) - 10} more" if len(empty_classes) > 10 else ""
        message += f"; no image at all was found for class {shown}{more}"
    if hint:
        message += f"; {hint}"
    raise UserError(message)
