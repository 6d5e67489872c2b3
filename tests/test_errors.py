"""Bad input to ``train.py`` ends the run with one clear line on stderr, exit code 1 and no traceback:
unknown trainer or dataset (closest name suggested), config key typos (key suggested), a missing config
file, an INPUT.SIZE the backbone cannot take, a missing checkpoint epoch, an unusable data root. fp16 on a
CPU is a warning and the run continues in fp32. The CLI runs in this process (``train.cli``), which is
what ``python train.py`` calls; test_train_cli.py checks a real process's exit code and stderr."""
import os

import torch
import yaml
from conftest import REPO_ROOT, one_error_line

import train
from promptlearn.engine import build_trainer

DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
COOP_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "tiny_vit_demo.yaml")


def coop(root, output_dir, *opts, trainer="CoOp", dataset_yaml=DATASET_YAML, config_yaml=COOP_YAML, flags=()):
    return ["--root", root, "--trainer", trainer, "--dataset-config-file", dataset_yaml, "--config-file",
            config_yaml, "--output-dir", output_dir, *flags, "DATALOADER.NUM_WORKERS", "0", *opts]


def test_unknown_trainer(cli, demo_root, tmp_path):
    line = one_error_line(*cli(coop(demo_root, tmp_path / "out", trainer="CoOP")))
    assert '"CoOP" is not available' in line and 'Did you mean "CoOp"?' in line


def test_unknown_dataset(cli, demo_root, tmp_path):
    dataset_yaml = tmp_path / "typo.yaml"
    dataset_yaml.write_text(yaml.safe_dump({"DATASET": {"NAME": "DemoShape"}}))
    line = one_error_line(*cli(coop(demo_root, tmp_path / "out", dataset_yaml=str(dataset_yaml))))
    assert '"DemoShape" is not available' in line and 'Did you mean "DemoShapes"?' in line


def test_config_key_typo_on_the_command_line(cli, demo_root, tmp_path):
    line = one_error_line(*cli(coop(demo_root, tmp_path / "out", "TRAINER.COOP.N_CTXX", "8")))
    assert "TRAINER.COOP.N_CTXX" in line and "Did you mean TRAINER.COOP.N_CTX?" in line


def test_config_key_typo_in_a_yaml(cli, demo_root, tmp_path):
    config_yaml = tmp_path / "method.yaml"
    config_yaml.write_text(yaml.safe_dump({"OPTIM": {"WARMUP_EPOCHS": 1}}))
    line = one_error_line(*cli(coop(demo_root, tmp_path / "out", config_yaml=str(config_yaml))))
    assert str(config_yaml) in line and "Did you mean OPTIM.WARMUP_EPOCH?" in line


def test_missing_config_file(cli, demo_root, tmp_path):
    missing = os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "no_such_config.yaml")
    line = one_error_line(*cli(coop(demo_root, tmp_path / "out", config_yaml=missing)))
    assert f"config file not found: {missing}" in line


def test_input_size_that_the_backbone_cannot_take(cli, demo_root, tmp_path):
    line = one_error_line(*cli(coop(demo_root, tmp_path / "out", "INPUT.SIZE", "(224, 224)")))
    assert "INPUT.SIZE (224, 224)" in line and "tiny-ViT (32)" in line and "(32, 32)" in line


def test_fp16_on_cpu_warns_and_runs_in_fp32(cli, demo_root, tmp_path):
    code, out, err = cli(coop(demo_root, tmp_path / "out", "TRAINER.COOP.PREC", "fp16", "OPTIM.MAX_EPOCH", "1",
                              "DATASET.NUM_SHOTS", "1"))
    assert code == 0 and "Traceback" not in err
    assert "WARNING: TRAINER.COOP.PREC=fp16 needs a CUDA device; running in fp32 on cpu" in out
    assert "* accuracy:" in out

    cfg = train.setup_cfg(train.build_parser().parse_args(coop(demo_root, str(tmp_path / "out2"),
                                                               "TRAINER.COOP.PREC", "fp16")))
    trainer = build_trainer(cfg)
    assert trainer.prec == "fp32" and trainer.scaler is None
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}


def test_eval_only_with_a_missing_epoch(cli, demo_root, tmp_path):
    trained = tmp_path / "trained"
    code, _, err = cli(coop(demo_root, trained, "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "1"))
    assert code == 0, err
    flags = ["--eval-only", "--model-dir", str(trained), "--load-epoch", "5"]
    line = one_error_line(*cli(coop(demo_root, tmp_path / "eval", "DATASET.NUM_SHOTS", "1", flags=flags)))
    assert os.path.join(str(trained), "prompt_learner", "model.pth.tar-5") in line
    assert "model.pth.tar-1" in line and "--load-epoch" in line

    flags = ["--eval-only", "--model-dir", str(tmp_path / "nowhere"), "--load-epoch", "1"]
    line = one_error_line(*cli(coop(demo_root, tmp_path / "eval2", flags=flags)))
    assert os.path.join(str(tmp_path / "nowhere"), "prompt_learner", "model.pth.tar-1") in line


def test_missing_demo_root_is_generated(cli, tmp_path):
    root = tmp_path / "new_root"
    code, out, err = cli(coop(str(root), tmp_path / "out", trainer="ZeroshotCLIP", flags=["--eval-only"]))
    assert code == 0, err
    assert os.path.isfile(root / "demo_shapes" / "split_zhou_DemoShapes.json")
    assert "* total: 100" in out  # the generated dataset's 10 test images per class


def test_unusable_demo_root(cli, tmp_path):
    root = tmp_path / "a_file"
    root.write_text("not a folder")
    line = one_error_line(*cli(coop(str(root), tmp_path / "out", trainer="ZeroshotCLIP", flags=["--eval-only"])))
    assert str(root) in line
