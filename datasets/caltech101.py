"""Caltech101: 100 object classes from ``101_ObjectCategories`` with CoOp's split file."""
from typing import Tuple

from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import SPLIT, Layout, Piece, SplitFileDataset
from promptlearn.data.datasets.splits import read_and_split_data

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitFileDataset):
    """The split is generated (50/20/30 per class) from the class folders when the file is absent; the
    background and easy-faces folders are left out and four plural or capitalised folders are renamed."""

    dataset_dir = "caltech-101"
    image_folder = "101_ObjectCategories"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_Caltech101.json", "split", role=SPLIT),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        return read_and_split_data(layout.path(cls.image_folder), ignored=IGNORED, new_cnames=NEW_CNAMES)
