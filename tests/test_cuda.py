"""CUDA runs of every learned method in the precisions of the paper configs (skipped without a GPU).

Each method trains for one epoch through ``train.py`` on DemoShapes with ``random-ViT-B/16`` (ViT-B/16's
exact architecture, random weights: no checkpoint download), in ``fp16`` (CLIP's half-precision weights, as
the paper configs) and in ``amp`` (fp32 weights, autocast), then the saved checkpoint is evaluated again
with ``--eval-only``. Checked: the run stays on CUDA in the precision asked for, losses stay finite, the
checkpoint holds the learned parameters in that precision, and evaluation reproduces the accuracy."""
import os

import pytest
import torch
from conftest import REPO_ROOT, read_results, run_train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
METHODS = {  # name: (trainer, config node, config, checkpoint folder)
    "coop": ("CoOp", "COOP", "CoOp/tiny_vit_demo.yaml", "prompt_learner"),
    "cocoop": ("CoCoOp", "COCOOP", "CoCoOp/tiny_vit_demo.yaml", "prompt_learner"),
    "maple": ("MaPLe", "MAPLE", "MaPLe/tiny_vit_demo.yaml", "MultiModalPromptLearner"),
    "gopro": ("GOPro", "GOPRO", "GOPro/tiny_vit_demo.yaml", "gopro"),
    "gopro_official": ("GOPro", "GOPRO", "GOPro/tiny_vit_demo_official.yaml", "gopro"),
}
PRECISIONS = ("fp16", "amp")


def args(root, name, prec, output_dir, extra=()):
    trainer, node, config, _ = METHODS[name]
    return ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", os.path.join(REPO_ROOT, "configs", "trainers", config), "--output-dir", output_dir,
            *extra, "MODEL.BACKBONE.NAME", "random-ViT-B/16", "INPUT.SIZE", "(224, 224)",
            f"TRAINER.{node}.PREC", prec, "DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1",
            "DATALOADER.NUM_WORKERS", "2", "DATASET.SUBSAMPLE_CLASSES", "base"]


@pytest.fixture(scope="module")
def runs(demo_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("cuda_runs")
    done = {}
    for name in METHODS:
        for prec in PRECISIONS:
            out = str(base / f"{name}_{prec}")
            train = run_train(args(demo_root, name, prec, out))
            evaluation = run_train(args(demo_root, name, prec, out + "_eval",
                                        ["--eval-only", "--model-dir", out, "--load-epoch", "1"]))
            done[name, prec] = (out, train, evaluation)
    return done


@pytest.mark.parametrize("prec", PRECISIONS)
@pytest.mark.parametrize("name", list(METHODS))
def test_trains_and_reloads_on_cuda(runs, name, prec):
    out, train, evaluation = runs[name, prec]
    for proc in (train, evaluation):
        assert "Traceback" not in proc.stderr and "needs a CUDA device" not in proc.stdout + proc.stderr
    assert read_results(out + "_eval")["test"]["accuracy"] == read_results(out)["test"]["accuracy"]
    folder = METHODS[name][3]
    state = torch.load(os.path.join(out, folder, "model.pth.tar-1"), map_location="cpu", weights_only=True)
    floats = [v for v in state["state_dict"].values() if v.is_floating_point()]
    assert floats and all(torch.isfinite(v).all() for v in floats)
    # the learned context follows CLIP's precision: fp16 weights under fp16, fp32 under amp
    ctx = [v for k, v in state["state_dict"].items() if k.endswith("ctx")]
    assert ctx and all(v.dtype == (torch.float16 if prec == "fp16" else torch.float32) for v in ctx)
