"""UCF101: 101 human actions, one middle frame per video, from ``UCF-101-midframes/`` with CoOp's split file."""
import os
import re
from typing import Tuple

from promptlearn.data.datasets import DATASET_REGISTRY, Datum
from promptlearn.data.datasets.layout import SOURCE, SPLIT, Layout, Piece, SplitFileDataset, read_text_lines
from promptlearn.data.datasets.splits import split_trainval

LIST_DIR = "ucfTrainTestlist"


def display_name(action: str) -> str:
    """``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup``: the CamelCase action split at capitals, joined by ``_``
    (this is also the frame folder's name)."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(SplitFileDataset):
    """Without the split file, ``trainlist01.txt`` is split 80/20 per class into train and val and
    ``testlist01.txt`` is the test set; labels come from ``classInd.txt`` (1-based)."""

    dataset_dir = "ucf101"
    image_folder = "UCF-101-midframes"
    pieces = (
        Piece(image_folder, "image", is_dir=True),
        Piece("split_zhou_UCF101.json", "split", role=SPLIT),
        Piece(f"{LIST_DIR}/classInd.txt", "class list", role=SOURCE),
        Piece(f"{LIST_DIR}/trainlist01.txt", "split list", role=SOURCE),
        Piece(f"{LIST_DIR}/testlist01.txt", "split list", role=SOURCE),
    )

    @classmethod
    def generate_split(cls, layout: Layout) -> Tuple[list, list, list]:
        relpath = f"{LIST_DIR}/classInd.txt"
        cname2lab = {}
        for number, line in enumerate(read_text_lines(layout, relpath), start=1):
            fields = line.split(" ")
            if len(fields) != 2 or not fields[0].isdigit():
                raise layout.error(f'line {number} of {layout.path(relpath)} is "{line}", expected "<id> <Action>"')
            cname2lab[fields[1]] = int(fields[0]) - 1
        trainval = cls.read_video_list(layout, f"{LIST_DIR}/trainlist01.txt", cname2lab)
        test = cls.read_video_list(layout, f"{LIST_DIR}/testlist01.txt", cname2lab)
        train, val = split_trainval(trainval)
        return train, val, test

    @classmethod
    def read_video_list(cls, layout: Layout, relpath: str, cname2lab: dict) -> list:
        """Lines ``<Action>/<video>.avi [label]``; the frame is ``<Renamed_Action>/<video>.jpg``."""
        items = []
        for number, line in enumerate(read_text_lines(layout, relpath), start=1):
            action, _, filename = line.split(" ")[0].partition("/")
            if action not in cname2lab:
                raise layout.error(f'line {number} of {layout.path(relpath)} names the action "{action}", which '
                                   f"is not in {layout.path(LIST_DIR + '/classInd.txt')}")
            renamed = display_name(action)
            impath = os.path.join(layout.path(cls.image_folder), renamed, filename.replace(".avi", ".jpg"))
            items.append(Datum(impath=impath, label=cname2lab[action], classname=renamed))
        return items
