"""ImageNetSketch: sketches of the 1000 ImageNet classes in ``images/<wnid>/``."""
from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import Piece

from .imagenet import CLASSNAMES_FILE, ImageNetTestSet


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetTestSet):
    dataset_dir = "imagenet-sketch"
    image_folder = "images"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece(CLASSNAMES_FILE, "class list"),
    )
