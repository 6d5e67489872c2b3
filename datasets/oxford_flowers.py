"""OxfordFlowers (Flowers102): 102 flower species from ``jpg/`` with CoOp's split file (or the labels)."""
import os
from collections import defaultdict
from typing import Tuple

from scipy.io import loadmat

from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import SOURCE, SPLIT, Layout, Piece, SplitFileDataset
from promptlearn.data.datasets.splits import split_by_percentage
from promptlearn.utils.tools import read_json

LABEL_FILE = "imagelabels.mat"
NAME_FILE = "cat_to_name.json"


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitFileDataset):
    """Without the split file, ``imagelabels.mat`` gives the 1-based label of ``jpg/image_<i>.jpg``, the
    names come from ``cat_to_name.json``, and each class (in order of first appearance) is split 50/20/30."""

    dataset_dir = "oxford_flowers"
    image_folder = "jpg"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_OxfordFlowers.json", "split", role=SPLIT),
        Piece(LABEL_FILE, "label", role=SOURCE),
        Piece(NAME_FILE, "class list", role=SOURCE),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        label_path = layout.path(LABEL_FILE)
        try:
            labels = loadmat(label_path)["labels"][0]
        except (OSError, ValueError, KeyError) as err:
            raise layout.error(f"cannot read 'labels' from {label_path} ({err})") from None
        try:
            lab2cname = read_json(layout.path(NAME_FILE))
        except ValueError as err:
            raise layout.error(f"{layout.path(NAME_FILE)} is not valid JSON ({err})") from None
        tracker = defaultdict(list)
        for index, label in enumerate(labels):
            tracker[int(label)].append(os.path.join(layout.path(cls.image_folder), f"image_{index + 1:05d}.jpg"))
        groups = []
        for label, impaths in tracker.items():
            if str(label) not in lab2cname:
                raise layout.error(f"label {label} of {label_path} has no name in {layout.path(NAME_FILE)}")
            groups.append((label - 1, lab2cname[str(label)], impaths))
        return split_by_percentage(groups)
