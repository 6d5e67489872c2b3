"""SUN397: 397 scene classes from ``SUN397/<letter>/<class path>/`` with CoOp's split file."""
import os
from typing import Tuple

from promptlearn.data.datasets import DATASET_REGISTRY, Datum
from promptlearn.data.datasets.layout import SOURCE, SPLIT, Layout, Piece, SplitFileDataset, read_text_lines
from promptlearn.data.datasets.splits import split_trainval


def display_name(class_path: str) -> str:
    """``a/apartment_building/outdoor`` -> ``outdoor apartment_building``: the letter is dropped and the
    remaining parts are reversed, so qualifiers such as indoor/outdoor come first."""
    return " ".join(class_path.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(SplitFileDataset):
    """Without the split file, ``Training_01.txt`` is split 80/20 per class into train and val and
    ``Testing_01.txt`` is the test set; labels are line indices in ``ClassName.txt``."""

    dataset_dir = "sun397"
    image_folder = "SUN397"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_SUN397.json", "split", role=SPLIT),
        Piece("ClassName.txt", "class list", role=SOURCE),
        Piece("Training_01.txt", "partition", role=SOURCE),
        Piece("Testing_01.txt", "partition", role=SOURCE),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        class_paths = [line.lstrip("/") for line in read_text_lines(layout, "ClassName.txt")]
        cname2lab = {path: label for label, path in enumerate(class_paths)}
        trainval = cls.read_partition(layout, "Training_01.txt", cname2lab)
        test = cls.read_partition(layout, "Testing_01.txt", cname2lab)
        train, val = split_trainval(trainval)
        return train, val, test

    @classmethod
    def read_partition(cls, layout: Layout, relpath: str, cname2lab: dict) -> list:
        """Lines ``/a/abbey/sun_xxx.jpg``: the parent folder is the class path."""
        items = []
        for number, line in enumerate(read_text_lines(layout, relpath), start=1):
            imname = line.lstrip("/")
            class_path = os.path.dirname(imname)
            if class_path not in cname2lab:
                raise layout.error(f'line {number} of {layout.path(relpath)} is in class "{class_path}", which is '
                                   f"not in {layout.path('ClassName.txt')}")
            items.append(Datum(impath=os.path.join(layout.path(cls.image_folder), imname),
                               label=cname2lab[class_path], classname=display_name(class_path)))
        return items
