"""ImageNetV2 (matched frequency): 10,000 test images in integer class folders ``0``..``999``."""
from typing import Dict

from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import Layout, Piece

from .imagenet import CLASSNAMES_FILE, ImageNetTestSet, scan_class_folders

NUM_IMAGENET_CLASSES = 1000


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetTestSet):
    """Folder ``<k>`` holds class k, named by line k of ``classnames.txt``, so that file must list the
    classes in ImageNet's label (sorted wnid) order. All 1000 folders are required."""

    dataset_dir = "imagenetv2"
    image_folder = "imagenetv2-matched-frequency-format-val"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece(CLASSNAMES_FILE, "class list"),
    )

    @classmethod
    def read_lists(cls, layout: Layout) -> Dict[str, list]:
        classnames = list(cls.read_classnames(layout).values())
        if len(classnames) < NUM_IMAGENET_CLASSES:
            raise layout.error(f"{layout.path(CLASSNAMES_FILE)} has {len(classnames)} classes; ImageNetV2 needs "
                               f"ImageNet's {NUM_IMAGENET_CLASSES}")
        folders = [(str(label), label, classnames[label]) for label in range(NUM_IMAGENET_CLASSES)]
        return {"test": scan_class_folders(layout, layout.path(cls.image_folder), folders)}
