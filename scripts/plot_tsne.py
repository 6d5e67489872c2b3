"""Figure 3: a t-SNE of the image embeddings each model classifies with (see promptlearn/tools/tsne.py).

    python scripts/plot_tsne.py --root DATA --dataset-config-file configs/datasets/eurosat.yaml --classes base \\
        --model TRAINER CONFIG [MODEL_DIR [EPOCH]] [--model ...] --out figure3.png [KEY VALUE ...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import datasets  # noqa: E402,F401  (registers the dataset readers)
import trainers  # noqa: E402,F401  (registers the trainers)
from promptlearn.tools.tsne import main  # noqa: E402
from train import build_parser, setup_cfg  # noqa: E402


def train_config(argv):
    """The config ``python train.py ARGV`` runs with."""
    return setup_cfg(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(train_config))
