"""Mini-B2N: the generated base-to-new datasets of mini-ViT's concepts (promptlearn/demo/mini_b2n.py), read
from CoOp's layout (image folders and a split file) as the real datasets are; written on first use."""
import logging
import os

from promptlearn.data.datasets import DATASET_REGISTRY, DatasetBase
from promptlearn.data.datasets.splits import read_split
from promptlearn.demo.mini_b2n import MINI_B2N, make_mini_dataset

logger = logging.getLogger(__name__)


class MiniB2NDataset(DatasetBase):
    folder = ""  # the key of promptlearn.demo.mini_b2n.MINI_B2N

    def __init__(self, cfg):
        spec = MINI_B2N[self.folder]
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(root, spec.folder)
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.split_path = os.path.join(self.dataset_dir, spec.split_file)
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")
        if not os.path.exists(self.split_path):
            logger.info(f"Generating {spec.name} in {self.dataset_dir}")
            make_mini_dataset(root, spec.folder)
        train, val, test = read_split(self.split_path, self.image_dir)
        train, val, test = self.fewshot_and_subsample(cfg, train, val, test, self.split_fewshot_dir)
        super().__init__(train_x=train, val=val, test=test)


@DATASET_REGISTRY.register()
class MiniShapes(MiniB2NDataset):
    folder = "mini_shapes"


@DATASET_REGISTRY.register()
class MiniTextures(MiniB2NDataset):
    folder = "mini_textures"


@DATASET_REGISTRY.register()
class MiniColourShapes(MiniB2NDataset):
    folder = "mini_colour_shapes"


@DATASET_REGISTRY.register()
class MiniDigits(MiniB2NDataset):
    folder = "mini_digits"
