"""StanfordCars: 196 car models from ``cars_train/`` and ``cars_test/`` with CoOp's split file (or the devkit)."""
import os
from typing import Tuple

from scipy.io import loadmat

from promptlearn.data.datasets import DATASET_REGISTRY, Datum
from promptlearn.data.datasets.layout import SOURCE, SPLIT, Layout, Piece, SplitFileDataset
from promptlearn.data.datasets.splits import split_trainval

TRAIN_ANNOS = "devkit/cars_train_annos.mat"
TEST_ANNOS = "cars_test_annos_withlabels.mat"
META = "devkit/cars_meta.mat"


@DATASET_REGISTRY.register()
class StanfordCars(SplitFileDataset):
    """Split-file paths are relative to the dataset folder (``cars_train/00001.jpg``). Without the split
    file, the train annotations are split 80/20 per class into train and val and the labelled test
    annotations are the test set. Class names put the year first (``2012 Acura RL Sedan``)."""

    dataset_dir = "stanford_cars"
    image_folder = ""
    pieces = (
        Piece("cars_train", "training image", is_dir=True),
        Piece("cars_test", "test image", is_dir=True),
        Piece("split_zhou_StanfordCars.json", "split", role=SPLIT),
        Piece(TRAIN_ANNOS, "annotation", role=SOURCE),
        Piece(META, "class list", role=SOURCE),
        Piece(TEST_ANNOS, "annotation", role=SOURCE),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        trainval = cls.read_annotations(layout, "cars_train", TRAIN_ANNOS)
        test = cls.read_annotations(layout, "cars_test", TEST_ANNOS)
        train, val = split_trainval(trainval)
        return train, val, test

    @staticmethod
    def read_annotations(layout: Layout, image_folder: str, anno_relpath: str) -> list:
        annotations = _load_mat(layout, anno_relpath, "annotations")[0]
        class_names = _load_mat(layout, META, "class_names")[0]
        items = []
        for record in annotations:
            label = int(record["class"][0, 0]) - 1
            if not 0 <= label < len(class_names):
                raise layout.error(f"{layout.path(anno_relpath)} has class {label + 1}, which is not in "
                                   f"{layout.path(META)} ({len(class_names)} classes)")
            words = str(class_names[label][0]).split(" ")
            classname = " ".join(words[-1:] + words[:-1])
            impath = os.path.join(layout.dataset_dir, image_folder, str(record["fname"][0]))
            items.append(Datum(impath=impath, label=label, classname=classname))
        return items


def _load_mat(layout: Layout, relpath: str, key: str):
    path = layout.path(relpath)
    try:
        return loadmat(path)[key]
    except (OSError, ValueError, KeyError) as err:
        raise layout.error(f"cannot read {key!r} from {path} ({err})") from None
