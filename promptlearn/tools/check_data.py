"""Check a data root against the layouts the dataset readers expect (DATASETS.md).

    python -m datasets check --root DATA [--dataset NAME]      (from the repository root)

For each dataset it lists the pieces found and missing, with the exact path expected, then reads the
lists as training would (every listed image must exist) and reports the number of classes and images
per split. Nothing is written. The exit code is 1 if anything is missing.
"""
import argparse
import logging
import os
import sys
from typing import List, Tuple

from ..data.datasets.layout import SOURCE, SPLIT, Layout
from ..errors import UserError
from .dataset_catalog import reader_class, resolve_names


def check_dataset(reader: type, root: str) -> Tuple[bool, List[str]]:
    """Whether one dataset is complete, and the report lines (a status line, then one line per piece)."""
    layout = Layout.of(reader, root)
    name = reader.__name__
    if not os.path.isdir(layout.dataset_dir):
        return False, [f"{name}: INCOMPLETE ({layout.hint})",
                       f"  MISSING  {layout.dataset_dir}{os.sep}  (dataset folder)"]
    lines = []
    split_exists = layout.split_file_exists()
    missing = False
    for piece in layout.pieces:
        path = layout.path(piece.relpath) + (os.sep if piece.is_dir else "")
        if layout.exists(piece):
            lines.append(f"  found    {path}  ({piece.description})")
        elif piece.role == SOURCE and split_exists:
            continue
        elif piece.role == SPLIT and not layout.missing():
            missing = True
            lines.append(f"  MISSING  {path}  (published {piece.description}; training would generate a new, "
                         "different split; fetch the published one with download_data --splits-only)")
        else:
            missing = True
            lines.append(f"  MISSING  {path}  ({piece.description})")
    if not missing:
        try:
            lists = reader.read_lists(layout)
        except UserError as err:
            missing = True
            lines.append(f"  ERROR    {err}")
        else:
            labels = {item.label for items in lists.values() for item in items}
            sizes = ", ".join(f"{split} {len(items):,}" for split, items in lists.items())
            lines.append(f"  {len(labels):,} classes; images: {sizes}")
    status = "INCOMPLETE" if missing else "complete"
    hint = f" ({layout.hint})" if missing else ""
    return not missing, [f"{name}: {status}  {layout.dataset_dir}{hint}", *lines]


def main(argv=None, config_dir=None) -> int:
    """The command line; ``config_dir`` (the dataset configs) lets ``--dataset`` take a config file's stem."""
    parser = argparse.ArgumentParser(prog="python -m datasets check", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the data root (the folder that holds one folder per dataset)")
    parser.add_argument("--dataset", default="", help="check only this dataset (registry name or config stem)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        names = resolve_names(args.dataset, config_dir)
        readers = {name: reader_class(name) for name in names}
        root = os.path.abspath(os.path.expanduser(args.root))
        if not os.path.isdir(root):
            raise UserError(f"data root {root} does not exist; see DATASETS.md")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    incomplete = []
    for name in names:
        complete, lines = check_dataset(readers[name], root)
        print("\n".join(lines))
        if not complete:
            incomplete.append(name)
    if len(names) > 1:
        print(f"\n{len(names) - len(incomplete)} of {len(names)} datasets complete"
              + (f"; incomplete: {', '.join(incomplete)}" if incomplete else ""))
    return 1 if incomplete else 0
