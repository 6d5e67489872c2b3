"""OxfordPets: 37 cat and dog breeds from ``images/`` with CoOp's split file (or the official annotations)."""
import os
from typing import Tuple

from promptlearn.data.datasets import DATASET_REGISTRY, Datum
from promptlearn.data.datasets.layout import SOURCE, SPLIT, Layout, Piece, SplitFileDataset, read_text_lines
from promptlearn.data.datasets.splits import split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(SplitFileDataset):
    """Without the split file, ``annotations/trainval.txt`` is split 80/20 per class into train and val
    and ``annotations/test.txt`` is the test set. Class names are the lower-cased image-name prefix."""

    dataset_dir = "oxford_pets"
    image_folder = "images"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_OxfordPets.json", "split", role=SPLIT),
        Piece("annotations/trainval.txt", "annotation", role=SOURCE),
        Piece("annotations/test.txt", "annotation", role=SOURCE),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        trainval = cls.read_annotations(layout, "annotations/trainval.txt")
        test = cls.read_annotations(layout, "annotations/test.txt")
        train, val = split_trainval(trainval)
        return train, val, test

    @classmethod
    def read_annotations(cls, layout: Layout, relpath: str) -> list:
        """Lines ``<image name> <class id 1..37> <species> <breed id>``; the class name is the image name
        without its trailing ``_<number>``, lower-cased (``Abyssinian_100`` is an ``abyssinian``)."""
        image_dir = layout.path(cls.image_folder)
        items = []
        for number, line in enumerate(read_text_lines(layout, relpath), start=1):
            fields = line.split(" ")
            if len(fields) != 4 or not fields[1].isdigit():
                raise layout.error(f'line {number} of {layout.path(relpath)} is "{line}", expected '
                                   '"<image name> <class id> <species> <breed id>"')
            imname, class_id = fields[0], int(fields[1])
            breed = "_".join(imname.split("_")[:-1]).lower()
            items.append(Datum(impath=os.path.join(image_dir, imname + ".jpg"), label=class_id - 1,
                               classname=breed))
        return items
