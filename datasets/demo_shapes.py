"""DemoShapes: the generated demo dataset (10 shape classes, CoOp layout). Written on first use."""
import logging
import os

from promptlearn.data.datasets import DATASET_REGISTRY, DatasetBase
from promptlearn.data.datasets.splits import read_split
from promptlearn.demo.demo_shapes import DATASET_DIR, SPLIT_FILE, make_demo_dataset

logger = logging.getLogger(__name__)


@DATASET_REGISTRY.register()
class DemoShapes(DatasetBase):
    dataset_dir = DATASET_DIR

    def __init__(self, cfg):
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(root, self.dataset_dir)
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.split_path = os.path.join(self.dataset_dir, SPLIT_FILE)
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")
        if not os.path.exists(self.split_path):
            logger.info(f"Generating the demo dataset in {self.dataset_dir}")
            make_demo_dataset(root)
        train, val, test = read_split(self.split_path, self.image_dir)
        train, val, test = self.fewshot_and_subsample(cfg, train, val, test, self.split_fewshot_dir)
        super().__init__(train_x=train, val=val, test=test)
