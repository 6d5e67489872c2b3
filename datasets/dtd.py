"""DescribableTextures (DTD): 47 texture classes from ``images/<class>/`` with CoOp's split file."""
from typing import Tuple

from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import SPLIT, Layout, Piece, SplitFileDataset
from promptlearn.data.datasets.splits import read_and_split_data


@DATASET_REGISTRY.register()
class DescribableTextures(SplitFileDataset):
    """The split is generated (50/20/30 per class) from the class folders when the file is absent; DTD's
    own ``labels/`` splits are not used."""

    dataset_dir = "dtd"
    image_folder = "images"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_DescribableTextures.json", "split", role=SPLIT),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        return read_and_split_data(layout.path(cls.image_folder))
