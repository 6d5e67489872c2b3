"""EuroSAT: 10 land-use classes of Sentinel-2 RGB tiles from ``2750/<Class>/`` with CoOp's split file."""
from typing import Tuple

from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import SPLIT, Layout, Piece, SplitFileDataset
from promptlearn.data.datasets.splits import read_and_split_data

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitFileDataset):
    """The split is generated (50/20/30 per class) from the class folders when the file is absent, with
    the folder names mapped to descriptive class names."""

    dataset_dir = "eurosat"
    image_folder = "2750"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_EuroSAT.json", "split", role=SPLIT),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        return read_and_split_data(layout.path(cls.image_folder), new_cnames=NEW_CNAMES)
