"""The trainer engine's contracts, through ``train.py``'s command line in this process:

- a trainer written for Dassl (``dassl.*`` imports, ``TrainerX`` with ``build_model``, ``register_model``,
  ``forward_backward``, ``model_backward_and_update``, ``update_lr``) runs here once its imports say ``promptlearn``:
  it trains, saves, resumes and evaluates with the files and result lines a Dassl run writes;
- with ``TEST.FINAL_MODEL best_val`` a killed run resumes from its newest ``model.pth.tar-N`` (never from
  ``model-best.pth.tar``) and keeps the best validation result it had, so the final evaluation deploys the
  epoch that really was best;
- an evaluation that fails part-way leaves no cached class text features behind: training goes on with
  prompts that still learn.
"""
import os
import types

import pytest
import torch
from conftest import REPO_ROOT, parse_accuracy, read_results

import train
from promptlearn.engine import TRAINER_REGISTRY, build_trainer
from trainers.coop import CoOp

DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
COOP_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "tiny_vit_demo.yaml")

# A trainer as one writes it for Dassl: a linear classifier on the pixels, trained with Dassl's helpers.
DASSL_TRAINER = '''
import torch.nn as nn
from torch.nn import functional as F

from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import count_num_param, load_pretrained_weights


@TRAINER_REGISTRY.register()
class PixelProbe(TrainerX):
    def check_cfg(self, cfg):
        assert cfg.OPTIM.NAME in ("sgd", "adam")

    def build_model(self):
        cfg = self.cfg
        side = cfg.INPUT.SIZE[0]
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(3 * side * side, self.num_classes))
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        print(f"# params: {count_num_param(self.model):,}")
        self.optim = build_optimizer(self.model, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("model", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label, _ = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
'''


def port(source: str) -> str:
    """What porting a Dassl trainer takes here: its imports."""
    return source.replace("from dassl.", "from promptlearn.")


@pytest.fixture
def pixel_probe():
    module = types.ModuleType("ported_pixel_probe")
    exec(compile(port(DASSL_TRAINER), "ported_pixel_probe.py", "exec"), module.__dict__)
    yield module.PixelProbe
    TRAINER_REGISTRY._classes.pop("PixelProbe")


def run_args(root, output_dir, trainer="CoOp", flags=(), opts=()):
    return ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", COOP_YAML, "--output-dir", output_dir, *flags, "DATASET.NUM_SHOTS", "2",
            "DATALOADER.NUM_WORKERS", "0", *opts]


def read(path):
    with open(path) as f:
        return f.read()


def test_a_dassl_trainer_ports_by_changing_its_imports(cli, demo_root, tmp_path, pixel_probe):
    out, evaluated = tmp_path / "probe", tmp_path / "probe_eval"
    opts = ["OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0"]
    code, stdout, stderr = cli(run_args(demo_root, out, "PixelProbe", opts=opts))
    assert code == 0, stderr
    assert sorted(os.listdir(out / "model")) == ["checkpoint", "model.pth.tar-2"]
    checkpoint = torch.load(out / "model" / "model.pth.tar-2", weights_only=True)
    assert set(checkpoint["state_dict"]) == {"1.weight", "1.bias"} and checkpoint["epoch"] == 2
    log = read(out / "log.txt")
    assert "# params: 30,730" in log  # its own print()s reach the log too
    assert log.index("Finish training") < log.rindex("=> result")
    results = read_results(out)["test"]
    assert results["total"] == 40 and round(results["accuracy"], 1) == parse_accuracy(log)

    # a second run into the folder resumes (nothing left to train) and a --eval-only run reloads the weights
    code, _, stderr = cli(run_args(demo_root, out, "PixelProbe", opts=opts))
    assert code == 0, stderr
    code, _, stderr = cli(run_args(demo_root, evaluated, "PixelProbe", opts=opts,
                                   flags=["--eval-only", "--model-dir", out, "--load-epoch", "2"]))
    assert code == 0, stderr
    assert read_results(evaluated)["test"]["accuracy"] == results["accuracy"]


class Killed(Exception):
    """Stands for the process being killed."""


def script(monkeypatch, val_results, kill_at=None):
    """Validation accuracies by epoch (0-based) instead of real evaluations; ``kill_at``: stop in that epoch."""
    real_test, real_run_epoch = CoOp.test, CoOp.run_epoch
    seen = {}

    def test(self, split=None):
        if split == "val":
            seen.setdefault("best_result_at_first_val", self.best_result)
            return val_results[self.epoch]
        return real_test(self, split)

    def run_epoch(self):
        if self.epoch == kill_at:
            raise Killed()
        real_run_epoch(self)

    monkeypatch.setattr(CoOp, "test", test)
    monkeypatch.setattr(CoOp, "run_epoch", run_epoch)
    return seen


def test_best_val_run_resumes_from_its_last_checkpoint_and_keeps_its_best(cli, demo_root, tmp_path, monkeypatch):
    out = tmp_path / "best_val"
    opts = ["TEST.FINAL_MODEL", "best_val", "OPTIM.MAX_EPOCH", "4", "TRAIN.CHECKPOINT_FREQ", "2"]
    # epoch 3 is the best; the run is killed in epoch 4, after model.pth.tar-2 and model-best (epoch 3) were saved
    script(monkeypatch, {0: 10.0, 1: 5.0, 2: 50.0}, kill_at=3)
    with pytest.raises(Killed):
        cli(run_args(demo_root, out, opts=opts))
    learner = out / "prompt_learner"
    assert sorted(os.listdir(learner)) == ["checkpoint", "model-best.pth.tar", "model.pth.tar-2"]
    assert read(learner / "checkpoint") == "model.pth.tar-2\n"
    assert torch.load(learner / "model-best.pth.tar", weights_only=True)["epoch"] == 3

    # the rerun continues after epoch 2 with the best result so far (10): epoch 3 is best again, epoch 4 is not
    monkeypatch.undo()
    seen = script(monkeypatch, {2: 50.0, 3: 20.0})
    code, _, stderr = cli(run_args(demo_root, out, opts=opts))
    assert code == 0, stderr
    resumed_log = read(out / next(name for name in os.listdir(out) if name.startswith("log.txt-")))
    assert f'Resuming prompt_learner from "{learner / "model.pth.tar-2"}"' in resumed_log
    assert seen["best_result_at_first_val"] == 10.0
    assert read(learner / "checkpoint") == "model.pth.tar-4\n"
    assert read_results(out)["test"]["epoch"] == 3  # the final evaluation deploys the best epoch


def test_a_failed_evaluation_leaves_no_stale_text_features(demo_root, tmp_path, monkeypatch):
    args = train.build_parser().parse_args(run_args(demo_root, str(tmp_path / "out"), opts=["OPTIM.WARMUP_EPOCH", "0"]))
    trainer = build_trainer(train.setup_cfg(args))
    batch = next(iter(trainer.train_loader_x))
    trainer.batch_idx, trainer.num_batches = 0, 1

    def broken(image):
        raise RuntimeError("the evaluation broke")

    monkeypatch.setattr(trainer, "model_inference", broken)
    with pytest.raises(RuntimeError, match="the evaluation broke"):
        trainer.test()
    assert trainer.model._cached_text_features is None
    monkeypatch.undo()
    trainer.set_model_mode("train")
    before = trainer.model.prompt_learner.ctx.detach().clone()
    trainer.forward_backward(batch)
    assert trainer.model.prompt_learner.ctx.grad is not None
    assert not torch.equal(trainer.model.prompt_learner.ctx, before)
