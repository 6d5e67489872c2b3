"""ImageNetA: natural adversarial examples of 200 ImageNet classes in ``imagenet-a/<wnid>/``."""
from promptlearn.data.datasets import DATASET_REGISTRY
from promptlearn.data.datasets.layout import Piece

from .imagenet import CLASSNAMES_FILE, ImageNetTestSet


@DATASET_REGISTRY.register()
class ImageNetA(ImageNetTestSet):
    """The 200 folders give labels 0..199 (the archive's README.txt is not a class): a 200-way classifier."""

    dataset_dir = "imagenet-adversarial"
    image_folder = "imagenet-a"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece(CLASSNAMES_FILE, "class list"),
    )
