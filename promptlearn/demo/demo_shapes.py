"""DemoShapes: 10 classes of drawn shapes in CoOp's layout, the tiny random backbones' test dataset.

Each image is one shape (the class) in a random colour, size, position and rotation on a textured
background, so the classes are easy for a person to tell apart. Labels follow the sorted class names
(base = the first five, new = the last five). Generation is deterministic for a given seed.
``num_classes`` keeps only the first N classes, e.g. 9 for a dataset whose base and new halves differ in
size (5 base, 4 new), as in OxfordPets, Food101 or DTD.
"""
import os

from ..errors import UserError
from .datasets import write_image_dataset
from .drawing import DEMO_SHAPES, render

DATASET_DIR = "demo_shapes"
SPLIT_FILE = "split_zhou_DemoShapes.json"
CLASSNAMES = DEMO_SHAPES
SPLIT_SIZES = {"train": 20, "val": 5, "test": 10}


def make_demo_dataset(root: str, seed: int = 0, split_sizes: dict = None, size: int = 64,
                      num_classes: int = len(CLASSNAMES)) -> str:
    """Write DemoShapes (its first ``num_classes`` classes) under ``root``; returns the dataset folder.
    Existing files are rewritten."""
    if not 1 <= num_classes <= len(CLASSNAMES):
        raise UserError(f"the demo dataset has 1 to {len(CLASSNAMES)} classes, got {num_classes}")
    return write_image_dataset(root, DATASET_DIR, SPLIT_FILE, CLASSNAMES[:num_classes],
                               lambda classname, rng: render(classname, rng, size), split_sizes or SPLIT_SIZES, seed)


def demo_dataset_exists(root: str) -> bool:
    return os.path.isfile(os.path.join(os.path.expanduser(root), DATASET_DIR, SPLIT_FILE))
