"""ImageNetSketch: sketches of the 1000 ImageNet classes in ``images/<wnid>/``."""
from promptlearn.data.datasets import DATASET_REGISTRY

from .imagenet import CLASSNAMES_FILE, ImageNetTestSet
from .layout import Piece


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetTestSet):
    dataset_dir = "imagenet-sketch"
    image_folder = "images"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece(CLASSNAMES_FILE, "class list"),
    )
