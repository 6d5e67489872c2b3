"""Writing generated datasets in CoOp's layout (one image folder per class and a split JSON), for DemoShapes
and Mini-B2N:

    <root>/<folder>/images/<class>/<class>_<nnn>.jpg
    <root>/<folder>/<split file>     {"train"|"val"|"test": [[relpath, label, classname], ...]}

Labels follow the given class order; a base-to-new run takes the first half as base classes. The split
file is written last (atomically), so a dataset whose split file exists is complete; an interrupted
generation is simply started again.
"""
import os
import random
from typing import Callable, Dict, List

from PIL import Image

from ..errors import UserError
from ..utils.tools import write_json


def class_folder(classname: str) -> str:
    return classname.replace(" ", "_")


def write_image_dataset(root: str, folder: str, split_file: str, classnames: List[str],
                        draw: Callable[[str, random.Random], Image.Image], split_sizes: Dict[str, int],
                        seed: int) -> str:
    """Draw ``split_sizes[split]`` images per class and split with ``draw(classname, rng)``; returns the
    dataset folder. Deterministic for a given seed; existing files are rewritten."""
    rng = random.Random(seed)
    dataset_dir = os.path.join(os.path.abspath(os.path.expanduser(root)), folder)
    split = {name: [] for name in split_sizes}
    try:
        for label, classname in enumerate(classnames):
            name = class_folder(classname)
            os.makedirs(os.path.join(dataset_dir, "images", name), exist_ok=True)
            index = 0
            for split_name, count in split_sizes.items():
                for _ in range(count):
                    relpath = f"{name}/{name}_{index:03d}.jpg"
                    draw(classname, rng).save(os.path.join(dataset_dir, "images", relpath), quality=92)
                    split[split_name].append([relpath, label, classname])
                    index += 1
        write_json(split, os.path.join(dataset_dir, split_file))
    except OSError as err:
        raise UserError(f"cannot write the dataset to {dataset_dir} ({err.strerror or err}); "
                        "pass --root a folder that can be created and written.") from None
    return dataset_dir
