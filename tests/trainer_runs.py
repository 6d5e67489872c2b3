"""What the prompt trainers' tests share: the base-to-new protocol on the demo dataset through ``train.py``
as the scripts run it (train on the base classes, then evaluate the saved checkpoint with ``--eval-only`` on
the base classes, which must give the training run's final test result again, and on the new classes), and
a method config merged as ``train.py`` merges it."""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from conftest import parse_accuracy, read_results, run_train

from train import build_parser, setup_cfg

DATASET_CONFIG = "configs/datasets/demo_shapes.yaml"
# one thread per run: the tiny backbones gain nothing from more, and the two evaluations run side by side
SINGLE_THREAD = {"OMP_NUM_THREADS": "1"}
SCHEDULE_KEYS = ("NAME", "LR", "MAX_EPOCH", "LR_SCHEDULER", "WARMUP_EPOCH", "WARMUP_TYPE", "WARMUP_CONS_LR")


def merged_config(trainer: str, config_file: str):
    """The config ``train.py --trainer TRAINER --config-file CONFIG_FILE`` runs with."""
    return setup_cfg(build_parser().parse_args(["--trainer", trainer, "--dataset-config-file", DATASET_CONFIG,
                                                "--config-file", config_file]))


def schedule(cfg) -> dict:
    return {key: cfg.OPTIM[key] for key in SCHEDULE_KEYS}


@dataclass
class BaseToNewRun:
    train_dir: str
    train_log: str
    eval_base_dir: str
    eval_new_dir: str

    def checkpoint(self, model_name: str, epoch: int) -> dict:
        path = os.path.join(self.train_dir, model_name, f"model.pth.tar-{epoch}")
        return torch.load(path, map_location="cpu", weights_only=True)


def run_base_to_new(trainer: str, config_file: str, root: str, output_dir: str, epochs: int = 1) -> BaseToNewRun:
    """Train ``epochs`` epochs at the full LR (no warmup), then run both evaluations side by side."""
    common = ["--root", root, "--seed", 1, "--trainer", trainer, "--dataset-config-file", DATASET_CONFIG,
              "--config-file", config_file]
    train_dir = os.path.join(output_dir, "train_base")
    run_train([*common, "--output-dir", train_dir, "DATASET.NUM_SHOTS", 4, "DATASET.SUBSAMPLE_CLASSES", "base",
               "OPTIM.MAX_EPOCH", epochs, "OPTIM.WARMUP_EPOCH", 0], env_extra=SINGLE_THREAD)

    def evaluate(subsample: str) -> str:
        eval_dir = os.path.join(output_dir, f"eval_{subsample}")
        run_train([*common, "--output-dir", eval_dir, "--eval-only", "--model-dir", train_dir, "--load-epoch", epochs,
                   "DATASET.NUM_SHOTS", 4, "DATASET.SUBSAMPLE_CLASSES", subsample], env_extra=SINGLE_THREAD)
        return eval_dir

    with ThreadPoolExecutor(max_workers=2) as pool:
        eval_base_dir, eval_new_dir = pool.map(evaluate, ["base", "new"])
    with open(os.path.join(train_dir, "log.txt")) as f:
        train_log = f.read()
    return BaseToNewRun(train_dir, train_log, eval_base_dir, eval_new_dir)


def check_reload_and_new_classes(run: BaseToNewRun, model_name: str, epochs: int = 1) -> None:
    """The eval-only run on the base classes reproduces the training run's test; the new classes are evaluated."""
    trained = read_results(run.train_dir)["test"]
    reloaded = read_results(run.eval_base_dir)["test"]
    with open(os.path.join(run.eval_base_dir, "log.txt")) as f:
        eval_log = f.read()
    assert f"Loaded the weights of {model_name}" in eval_log
    assert parse_accuracy(eval_log) == parse_accuracy(run.train_log)
    assert reloaded == trained
    assert trained["epoch"] == epochs

    new = read_results(run.eval_new_dir)
    assert new["run"]["subsample_classes"] == "new"
    assert new["run"]["num_classes"] == 5  # DemoShapes: 10 classes, the upper 5 are new
    assert new["test"]["total"] == 20 and new["test"]["epoch"] == epochs
