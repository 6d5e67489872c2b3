"""FGVCAircraft: 100 aircraft variants; the official train/val/test lists are read on every run."""
import os
from typing import Dict

from promptlearn.data.datasets import DATASET_REGISTRY, Datum
from promptlearn.data.datasets.image_files import check_images_exist
from promptlearn.data.datasets.layout import Layout, LayoutDataset, Piece, read_text_lines

SPLIT_FILES = {"train": "images_variant_train.txt", "val": "images_variant_val.txt",
               "test": "images_variant_test.txt"}


@DATASET_REGISTRY.register()
class FGVCAircraft(LayoutDataset):
    """Class names are the lines of ``variants.txt`` (label = line index); each list line is an image id
    followed by the variant name, which may contain spaces (``1025794 Cessna 172``)."""

    dataset_dir = "fgvc_aircraft"
    image_folder = "images"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("variants.txt", "class list"),
        *(Piece(relpath, "split list") for relpath in SPLIT_FILES.values()),
    )

    @classmethod
    def read_lists(cls, layout: Layout) -> Dict[str, list]:
        classnames = read_text_lines(layout, "variants.txt")
        cname2lab = {name: label for label, name in enumerate(classnames)}
        lists = {split: cls.read_split_list(layout, relpath, cname2lab) for split, relpath in SPLIT_FILES.items()}
        check_images_exist(*lists.values(), source=f"{layout.dataset_dir}/images_variant_*.txt", hint=layout.hint)
        return lists

    @classmethod
    def read_split_list(cls, layout: Layout, relpath: str, cname2lab: dict) -> list:
        items = []
        for number, line in enumerate(read_text_lines(layout, relpath), start=1):
            image_id, _, classname = line.partition(" ")
            if classname not in cname2lab:
                raise layout.error(f'line {number} of {layout.path(relpath)} names the variant "{classname}", '
                                   f"which is not in {layout.path('variants.txt')}")
            impath = os.path.join(layout.path(cls.image_folder), image_id + ".jpg")
            items.append(Datum(impath=impath, label=cname2lab[classname], classname=classname))
        return items
