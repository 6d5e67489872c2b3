"""The shell sweeps and CoOp's paper configs: the configs merge with the right values; every method's protocol
scripts write to the reference folders and load the last epoch their config trains (DRY_RUN=1, with a stand-in
config tree); the table sweeps cover the right datasets, seeds and ablation rows; settings come from the
environment; and a real base-to-new run of CoOp on the demo dataset trains, tests and skips finished jobs."""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, folder_digest, one_error_line, read_results

from promptlearn import run_record
from promptlearn.config import get_cfg_default, merge_from_file
from promptlearn.engine import extend_cfg_for_trainers
from promptlearn.modeling.backbones import get_backbone_spec
from promptlearn.tools import jobs, tables

COOP_CONFIGS = {  # name: (backbone, epochs, CTX_INIT)
    "rn50": ("RN50", 200, ""), "rn50_ep50": ("RN50", 50, ""), "rn50_ep100": ("RN50", 100, ""),
    "rn50_ctxv1": ("RN50", 200, "a photo of a"), "rn50_ep50_ctxv1": ("RN50", 50, "a photo of a"),
    "rn101": ("RN101", 200, ""), "rn101_ep50": ("RN101", 50, ""),
    "vit_b32": ("ViT-B/32", 200, ""), "vit_b32_ep50": ("ViT-B/32", 50, ""),
    "vit_b16": ("ViT-B/16", 200, ""), "vit_b16_ep50": ("ViT-B/16", 50, ""), "vit_b16_ep100": ("ViT-B/16", 100, ""),
    "vit_b16_ctxv1": ("ViT-B/16", 200, "a photo of a"), "vit_b16_ep50_ctxv1": ("ViT-B/16", 50, "a photo of a"),
    "vit_b16_ep100_ctxv1": ("ViT-B/16", 100, "a photo of a"),
}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# the configs each method's scripts use, and the epochs their stand-ins say (the real ones belong to the methods)
METHODS = {  # method: (trainer, {protocol: (config, epochs)})
    "coop": ("CoOp", {"b2n": ("vit_b16_ctxv1", 200), "b2n_imagenet": ("vit_b16_ep50_ctxv1", 50),
                      "xd": ("vit_b16_ep50_ctxv1", 50)}),
    "cocoop": ("CoCoOp", {"b2n": ("vit_b16_c4_ep10_batch1_ctxv1", 10), "xd": ("vit_b16_c4_ep10_batch1_ctxv1", 10)}),
    "maple": ("MaPLe", {"b2n": ("vit_b16_c2_ep5_batch4_2ctx", 5),
                        "xd": ("vit_b16_c2_ep5_batch4_2ctx_cross_datasets", 2)}),
    "gopro": ("GOPro", {"b2n": ("vit_b16", 50), "xd": ("vit_b16_xd", 20)}),
    "slip": ("SLIP", {"b2n": ("vit_b16", 10), "xd": ("vit_b16_xd", 5)}),
}


def merged(path: str):
    cfg = get_cfg_default()
    extend_cfg_for_trainers(cfg)
    merge_from_file(cfg, path)
    return cfg


@pytest.mark.parametrize("name", sorted(COOP_CONFIGS))
def test_coop_paper_configs_merge(name):
    cfg = merged(os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", f"{name}.yaml"))
    backbone, epochs, ctx_init = COOP_CONFIGS[name]
    get_backbone_spec(backbone)
    expected = (backbone, epochs, ctx_init, 4 if ctx_init else 16)
    assert expected == (cfg.MODEL.BACKBONE.NAME, cfg.OPTIM.MAX_EPOCH, cfg.TRAINER.COOP.CTX_INIT, cfg.TRAINER.COOP.N_CTX)
    assert cfg.TRAINER.COOP.PREC == "fp16"
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATALOADER.TEST.BATCH_SIZE, cfg.DATALOADER.NUM_WORKERS) == \
        (32, 100, 8)
    assert tuple(cfg.INPUT.SIZE) == (224, 224) and cfg.INPUT.INTERPOLATION == "bicubic"
    assert list(cfg.INPUT.PIXEL_MEAN) == CLIP_MEAN and list(cfg.INPUT.PIXEL_STD) == CLIP_STD
    assert list(cfg.INPUT.TRANSFORMS) == ["random_resized_crop", "random_flip", "normalize"]
    assert (cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.LR_SCHEDULER) == ("sgd", 0.002, "cosine")
    assert (cfg.OPTIM.WARMUP_EPOCH, cfg.OPTIM.WARMUP_TYPE, cfg.OPTIM.WARMUP_CONS_LR) == (1, "constant", 1e-5)
    assert cfg.TRAIN.PRINT_FREQ == 5


def test_coop_rn50_val_config():
    cfg = merged(os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "rn50_val.yaml"))
    assert cfg.MODEL.BACKBONE.NAME == "RN50"
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATALOADER.TEST.BATCH_SIZE) == (200, 200)
    assert list(cfg.INPUT.PIXEL_MEAN) == CLIP_MEAN and cfg.INPUT.INTERPOLATION == "bicubic"
    assert cfg.OPTIM.MAX_EPOCH == get_cfg_default().OPTIM.MAX_EPOCH  # no optimisation settings


# -- promptlearn.tools.jobs ---------------------------------------------------------------------------------

def test_jobs_split_opts_and_max_epoch(tmp_path):
    assert jobs.split_opts('TRAINER.COOP.CTX_INIT "a photo of a" OPTIM.LR 0.1') == \
        ["TRAINER.COOP.CTX_INIT", "a photo of a", "OPTIM.LR", "0.1"]
    config = tmp_path / "c.yaml"
    config.write_text("OPTIM:\n  MAX_EPOCH: 7\n")
    assert jobs.max_epoch(str(config)) == 7
    assert jobs.max_epoch(str(config), ["OPTIM.MAX_EPOCH", "3", "OPTIM.LR", "1", "OPTIM.MAX_EPOCH", "4"]) == 4
    config.write_text("OPTIM:\n  LR: 0.1\n")
    assert jobs.max_epoch(str(config)) == get_cfg_default().OPTIM.MAX_EPOCH


def test_jobs_has_results(tmp_path):
    assert not jobs.has_results(str(tmp_path))
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"val": {"accuracy": 50.0, "epoch": 2}}))
    assert not jobs.has_results(str(tmp_path))  # a validation result during training: not finished
    path.write_text(json.dumps({"test": {"accuracy": 50.0, "epoch": 2}}))
    assert jobs.has_results(str(tmp_path)) and jobs.has_results(str(tmp_path), 2)
    assert not jobs.has_results(str(tmp_path), 3)
    path.write_text("{not json")
    assert not jobs.has_results(str(tmp_path))
    assert jobs.main(["has-results", str(tmp_path)]) == 1


def test_jobs_same_job(tmp_path):
    """What a sweep checks before skipping a job whose results exist: run.json records the same train.py
    arguments (the data root aside), the config files it names are unchanged, and so are the weights an
    evaluation loaded."""
    config = tmp_path / "method.yaml"
    config.write_text("OPTIM:\n  LR: 0.1\n")
    model = tmp_path / "model" / "prompt_learner"
    model.mkdir(parents=True)
    (model / "model.pth.tar-2").write_bytes(b"weights")
    argv = ["--root", "data", "--config-file", str(config), "--output-dir", str(tmp_path / "job"), "--eval-only",
            "--model-dir", str(tmp_path / "model"), "--load-epoch", "2", "OPTIM.LR", "0.1"]
    job = tmp_path / "job"
    job.mkdir()
    assert not run_record.same_job(str(job), argv)  # no run.json
    definition = {"kind": "evaluation", "weights": run_record.evaluated_weights(str(tmp_path / "model"), 2)}
    assert list(definition["weights"]) == ["prompt_learner/model.pth.tar-2"]
    (job / "run.json").write_text(json.dumps({"definition": definition, "inputs": run_record.job_inputs(argv)}))
    assert run_record.same_job(str(job), argv) and jobs.main(["same-job", str(job), *argv]) == 0
    assert run_record.same_job(str(job), ["--root", "/elsewhere", *argv[2:]])  # the data moved: the same job
    assert run_record.same_job(str(job), ["--start-over", *argv])  # an action, not a setting
    assert not run_record.same_job(str(job), [*argv[:-1], "0.2"])  # other OPTS
    assert jobs.main(["same-job", str(job), *argv[:-1], "0.2"]) == 1
    (model / "model.pth.tar-2").write_bytes(b"retrained")  # the evaluated model changed
    assert not run_record.same_job(str(job), argv)
    (model / "model.pth.tar-2").write_bytes(b"weights")
    config.write_text("OPTIM:\n  LR: 0.3\n")  # the config file was edited
    assert not run_record.same_job(str(job), argv)


# -- the scripts, DRY_RUN=1 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """A config root with every dataset and stand-ins for the configs of the methods other than CoOp."""
    root = tmp_path_factory.mktemp("configs")
    os.makedirs(root / "datasets")
    for stem in [*tables.DATASET_NAMES, "demo_shapes"]:
        (root / "datasets" / f"{stem}.yaml").write_text(f'DATASET:\n  NAME: "{stem}"\n')
    shutil.copytree(os.path.join(REPO_ROOT, "configs", "trainers", "CoOp"), root / "trainers" / "CoOp")
    for trainer, settings in (spec for name, spec in METHODS.items() if name != "coop"):
        os.makedirs(root / "trainers" / trainer, exist_ok=True)
        for cfg, epochs in settings.values():
            (root / "trainers" / trainer / f"{cfg}.yaml").write_text(f"OPTIM:\n  MAX_EPOCH: {epochs}\n")
    return str(root)


def script(path: str, *args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """``bash scripts/PATH ARGS`` with the test interpreter; ``env`` adds to the environment."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("CFG", "TAG", "OPTS", "EPOCHS", "LOADEP", "FORCE", "DRY_RUN", "SEEDS", "DATASETS",
                             "ZS_TRAINER", "ROWS", "CONFIGS", "SHOTS", "NPROC")}
    full_env.update({"PYTHON": sys.executable, "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    return subprocess.run(["bash", os.path.join(REPO_ROOT, "scripts", path), *map(str, args)], env=full_env,
                          cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=300)


def dry_run(path: str, *args, **env) -> list:
    """The train.py commands a script would run: [(flags, trailing KEY VALUE opts)]."""
    proc = script(path, *args, env={"DRY_RUN": "1", "OUTPUT": "OUT", "DATA": "DATA", **env})
    assert proc.returncode == 0, proc.stderr
    commands = []
    for line in proc.stdout.splitlines():
        words = shlex.split(line)
        if len(words) < 2 or words[1] != "train.py":
            continue
        assert words[0] == sys.executable
        flags, i = {}, 2
        while i < len(words) and words[i].startswith("--"):
            if words[i] == "--eval-only":
                flags["--eval-only"], i = True, i + 1
            else:
                flags[words[i]], i = words[i + 1], i + 2
        commands.append((flags, words[i:]))
    return commands


def opts_dict(opts: list) -> dict:
    assert len(opts) % 2 == 0
    return dict(zip(opts[::2], opts[1::2]))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_protocol_scripts(method, configs):
    trainer, settings = METHODS[method]
    cfg, epochs = settings["b2n"]
    [(train, train_opts)] = dry_run(f"{method}/base2new_train.sh", "caltech101", 1, CONFIGS=configs)
    train_dir = f"OUT/base2new/train_base/caltech101/shots_16/{trainer}/{cfg}/seed1"
    assert train["--output-dir"] == train_dir
    assert (train["--trainer"], train["--seed"], train["--root"]) == (trainer, "1", "DATA")
    assert train["--config-file"] == f"{configs}/trainers/{trainer}/{cfg}.yaml"
    assert train["--dataset-config-file"] == f"{configs}/datasets/caltech101.yaml"
    assert opts_dict(train_opts) == {"DATASET.NUM_SHOTS": "16", "DATASET.SUBSAMPLE_CLASSES": "base"}
    assert "--eval-only" not in train

    [(test, test_opts)] = dry_run(f"{method}/base2new_test.sh", "caltech101", 1, CONFIGS=configs)
    assert test["--output-dir"] == f"OUT/base2new/test_new/caltech101/shots_16/{trainer}/{cfg}/seed1"
    assert test["--model-dir"] == train_dir
    assert test["--load-epoch"] == str(epochs)  # the last epoch, never model-best
    assert test["--eval-only"] is True
    assert opts_dict(test_opts) == {"DATASET.NUM_SHOTS": "16", "DATASET.SUBSAMPLE_CLASSES": "new"}

    cfg, epochs = settings.get("b2n_imagenet", settings["b2n"])
    [(test, _)] = dry_run(f"{method}/base2new_test.sh", "imagenet", 3, CONFIGS=configs)
    assert test["--model-dir"] == f"OUT/base2new/train_base/imagenet/shots_16/{trainer}/{cfg}/seed3"
    assert test["--load-epoch"] == str(epochs)

    cfg, epochs = settings["xd"]
    [(train, train_opts)] = dry_run(f"{method}/xd_train.sh", 2, CONFIGS=configs)
    xd_dir = f"OUT/imagenet/{trainer}/{cfg}_16shots/seed2"
    assert train["--output-dir"] == xd_dir
    assert train["--dataset-config-file"] == f"{configs}/datasets/imagenet.yaml"
    assert opts_dict(train_opts) == {"DATASET.NUM_SHOTS": "16", "DATASET.SUBSAMPLE_CLASSES": "all"}
    [(test, test_opts)] = dry_run(f"{method}/xd_test.sh", "imagenet_r", 2, CONFIGS=configs)
    assert test["--output-dir"] == f"OUT/evaluation/{trainer}/{cfg}_16shots/imagenet_r/seed2"
    assert (test["--model-dir"], test["--load-epoch"], test["--eval-only"]) == (xd_dir, str(epochs), True)
    assert opts_dict(test_opts) == {"DATASET.SUBSAMPLE_CLASSES": "all"}


def test_zeroshot_script(configs):
    [(flags, opts)] = dry_run("zsclip/zeroshot.sh", "dtd", "new", CONFIGS=configs)
    assert flags["--output-dir"] == "OUT/ZeroshotCLIP/vit_b16/new/dtd"
    assert flags["--trainer"] == "ZeroshotCLIP" and flags["--eval-only"] is True and "--seed" not in flags
    assert flags["--config-file"] == f"{configs}/trainers/CoOp/vit_b16.yaml"
    assert opts == ["DATASET.SUBSAMPLE_CLASSES", "new"]
    [(flags, opts)] = dry_run("zsclip/zeroshot.sh", "imagenet", CONFIGS=configs, ZS_TRAINER="ZeroshotCLIP2")
    assert flags["--output-dir"] == "OUT/ZeroshotCLIP2/vit_b16/all/imagenet"
    assert opts == ["DATASET.SUBSAMPLE_CLASSES", "all"]
    assert script("zsclip/zeroshot.sh", "dtd", "old", env={"CONFIGS": configs}).returncode == 2


def test_environment_overrides_with_the_real_configs(tmp_path):
    env = {"CFG": "tiny_vit_demo", "SHOTS": "4", "EPOCHS": "3", "TAG": "_t",
           "OPTS": 'TRAINER.COOP.CTX_INIT "a photo" OPTIM.LR 0.1', "DRY_RUN": "1", "DATA": "mydata", "OUTPUT": "out"}
    proc = script("coop/base2new_test.sh", "demo_shapes", 2, env=env, cwd=str(tmp_path))  # from anywhere
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout.strip())
    flags = dict(zip(words[2:], words[3:]))
    assert flags["--config-file"] == "configs/trainers/CoOp/tiny_vit_demo.yaml"  # relative to the repository
    assert flags["--root"] == "mydata"
    assert flags["--output-dir"] == "out/base2new/test_new/demo_shapes/shots_4/CoOp/tiny_vit_demo_t/seed2"
    assert flags["--load-epoch"] == "3"
    opts = words[words.index("--eval-only") + 1:]
    assert opts == ["TRAINER.COOP.CTX_INIT", "a photo", "OPTIM.LR", "0.1", "OPTIM.MAX_EPOCH", "3",
                    "DATASET.NUM_SHOTS", "4", "DATASET.SUBSAMPLE_CLASSES", "new"]
    [(flags, _)] = dry_run("coop/base2new_test.sh", "demo_shapes", 2, EPOCHS="3", LOADEP="2")
    assert flags["--load-epoch"] == "2"
    # without overrides: CoOp's base-to-new config, and the epoch that config trains
    [(flags, _)] = dry_run("coop/base2new_test.sh", "demo_shapes", 1)
    assert flags["--config-file"] == "configs/trainers/CoOp/vit_b16_ctxv1.yaml"
    assert flags["--load-epoch"] == "200"


def test_script_errors(configs, tmp_path):
    proc = script("coop/base2new_train.sh", "nowhere", 1, env={"CONFIGS": configs})
    assert proc.returncode == 1 and 'unknown dataset "nowhere"' in proc.stderr and "caltech101" in proc.stderr
    proc = script("coop/base2new_train.sh", "dtd", env={"CONFIGS": configs})
    assert proc.returncode == 2 and "usage: bash" in proc.stderr and "DATASET SEED" in proc.stderr
    proc = script("coop/base2new_train.sh", "dtd", "one", env={"CONFIGS": configs})
    assert proc.returncode == 1 and "SEED must be" in proc.stderr
    proc = script("coop/base2new_train.sh", "dtd", 1, env={"CONFIGS": configs, "CFG": "nope"})
    assert proc.returncode == 1 and "config not found" in proc.stderr and "vit_b16_ctxv1" in proc.stderr
    proc = script("coop/base2new_test.sh", "dtd", 1, env={"CONFIGS": configs, "OUTPUT": str(tmp_path)})
    assert proc.returncode == 1 and "train it first: bash scripts/coop/base2new_train.sh dtd 1" in proc.stderr
    proc = script("tables/table1_base2new.sh", "coop", "clip", env={"DRY_RUN": "1", "CONFIGS": configs})
    assert proc.returncode == 1 and 'unknown method "clip"' in proc.stderr


def test_table1_sweep(configs):
    commands = dry_run("tables/table1_base2new.sh", "zsclip", CONFIGS=configs)
    outputs = [flags["--output-dir"] for flags, _ in commands]
    assert outputs == [f"OUT/ZeroshotCLIP/vit_b16/{classes}/{d}" for d in tables.B2N_DATASETS
                       for classes in ("base", "new")]
    commands = dry_run("tables/table1_base2new.sh", "coop", "gopro", CONFIGS=configs, DATASETS="dtd")
    outputs = [flags["--output-dir"] for flags, _ in commands]
    assert outputs == [f"OUT/base2new/{part}/dtd/shots_16/{trainer}/{cfg}/seed{seed}"
                       for trainer, cfg in (("CoOp", "vit_b16_ctxv1"), ("GOPro", "vit_b16"))
                       for seed in (1, 2, 3) for part in ("train_base", "test_new")]


@pytest.mark.parametrize("sweep,targets", [("table_cross_dataset.sh", tables.XD_TARGETS),
                                           ("table2_domain_generalization.sh", tables.DG_TARGETS)])
def test_transfer_sweeps(sweep, targets, configs):
    commands = dry_run(f"tables/{sweep}", "zsclip", "cocoop", CONFIGS=configs, SEEDS="4")
    outputs = [flags["--output-dir"] for flags, _ in commands]
    cfg = "vit_b16_c4_ep10_batch1_ctxv1_16shots"
    assert outputs == ([f"OUT/ZeroshotCLIP/vit_b16/all/{d}" for d in ["imagenet", *targets]]
                       + [f"OUT/imagenet/CoCoOp/{cfg}/seed4"]
                       + [f"OUT/evaluation/CoCoOp/{cfg}/{d}/seed4" for d in targets])


def test_table3_sweep_has_a_folder_per_row(configs):
    commands = dry_run("tables/table3_ablation.sh", CONFIGS=configs, DATASETS="eurosat", SEEDS="2")
    assert len(commands) == 12
    switches = {}
    for flags, opts in commands[::2]:
        values = opts_dict(opts)
        assert values["DATASET.SUBSAMPLE_CLASSES"] == "base"
        switches[flags["--output-dir"].split("/")[-2]] = tuple(
            values[f"TRAINER.GOPRO.{key}"] for key in ("LOSS_SEM_MOCO", "LOSS_SEM_AUGMIX", "LOSS_CON"))
    assert switches == {
        "vit_b16_loss_ce": ("False", "False", "False"),
        "vit_b16_loss_ce_con": ("False", "False", "True"),
        "vit_b16_loss_ce_sem1": ("True", "False", "False"),
        "vit_b16_loss_ce_sem2": ("False", "True", "False"),
        "vit_b16_loss_ce_sem12": ("True", "True", "False"),
        "vit_b16": ("True", "True", "True"),  # the full model: Table 1's GOPro runs
    }
    for (train, _), (test, test_opts) in zip(commands[::2], commands[1::2]):
        assert test["--model-dir"] == train["--output-dir"]
        assert test["--load-epoch"] == "50" and opts_dict(test_opts)["DATASET.SUBSAMPLE_CLASSES"] == "new"
    proc = script("tables/table3_ablation.sh", env={"DRY_RUN": "1", "CONFIGS": configs, "ROWS": "ce bogus"})
    assert proc.returncode == 1 and 'unknown ablation row "bogus"' in proc.stderr


# -- a real run ---------------------------------------------------------------------------------------------

def test_coop_base2new_on_the_demo_dataset(demo_root, tmp_path, capsys):
    out = tmp_path / "output"
    env = {"DATA": demo_root, "OUTPUT": str(out), "CFG": "tiny_vit_demo", "SHOTS": "4", "EPOCHS": "1",
           "CLIP_WEIGHTS_DIR": str(tmp_path / "no_weights")}
    tail = "demo_shapes/shots_4/CoOp/tiny_vit_demo/seed1"
    train_dir, test_dir = out / "base2new" / "train_base" / tail, out / "base2new" / "test_new" / tail

    proc = script("coop/base2new_train.sh", "demo_shapes", 1, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    base = read_results(str(train_dir))
    assert base["run"]["subsample_classes"] == "base" and base["run"]["num_shots"] == 4
    assert base["test"]["epoch"] == 1
    assert (train_dir / "prompt_learner" / "model.pth.tar-1").is_file()

    proc = script("coop/base2new_test.sh", "demo_shapes", 1, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    new = read_results(str(test_dir))
    assert new["run"]["subsample_classes"] == "new" and new["test"]["epoch"] == 1
    assert new["run"]["num_classes"] == 5 and base["run"]["num_classes"] == 5

    # a second call skips both jobs: nothing runs, no new log
    for name in ("base2new_train.sh", "base2new_test.sh"):
        proc = script(f"coop/{name}", "demo_shapes", 1, env=env)
        assert proc.returncode == 0 and "Skip: results exist at" in proc.stdout
    assert sorted(os.listdir(train_dir)) == ["log.txt", "prompt_learner", "results.json", "run.json", "tensorboard"]
    assert sorted(os.listdir(test_dir)) == ["log.txt", "results.json", "run.json"]
    proc = script("coop/base2new_test.sh", "demo_shapes", 1, env={**env, "FORCE": "1", "DRY_RUN": "1"})
    assert "Skip" not in proc.stdout and "FORCE=1: running the job" in proc.stdout and "--eval-only" in proc.stdout
    proc = script("coop/base2new_train.sh", "demo_shapes", 1, env={**env, "RESTART": "1", "DRY_RUN": "1"})
    assert f"RESTART=1: starting the job in {train_dir} over" in proc.stdout and " --start-over " in proc.stdout

    # other OPTS into the same folder: not skipped, and train.py refuses to reuse the folder (TAG keeps them apart)
    before = folder_digest(str(train_dir))
    proc = script("coop/base2new_train.sh", "demo_shapes", 1, env={**env, "OPTS": "OPTIM.LR 0.5"})
    assert proc.returncode == 1 and f"Found results at {train_dir} made with other arguments" in proc.stdout
    assert one_error_line(proc.returncode, proc.stdout, proc.stderr).startswith(
        f"error: {train_dir} holds a training run with other settings (OPTIM.LR: 0.02 in the folder, 0.5 now)")
    assert folder_digest(str(train_dir)) == before

    # an interrupted job (checkpoint written, no result yet) is run again into its folder, where train.py resumes
    os.remove(train_dir / "results.json")
    proc = script("coop/base2new_train.sh", "demo_shapes", 1, env={**env, "DRY_RUN": "1"})
    assert f"Found {train_dir} without a finished result" in proc.stdout
    assert f"--output-dir {train_dir} " in proc.stdout and "Skip" not in proc.stdout
    with open(train_dir / "results.json", "w") as f:
        json.dump(base, f)

    # the log parser and the table maker read the same numbers
    import parse_test_res

    assert parse_test_res.main([str(train_dir.parent)]) == 0
    assert parse_test_res.main([str(test_dir.parent), "--test-log"]) == 0
    assert tables.main([str(out), "--shots", "4", "--tables", "b2n", "--format", "csv"]) == 0
    printed = capsys.readouterr().out
    assert f"* accuracy: {base['test']['accuracy']:.2f}% +- 0.00%" in printed  # the logs print one decimal
    assert f"* accuracy: {new['test']['accuracy']:.2f}% +- 0.00%" in printed
    row = next(line for line in printed.splitlines() if line.startswith("demo_shapes,CoOp,"))
    cells = row.split(",")  # Dataset, Method, Base, Base std, New, New std, HM, ...
    assert (cells[2], cells[4]) == (f"{base['test']['accuracy']:.4f}", f"{new['test']['accuracy']:.4f}")


def test_nproc_runs_jobs_under_torchrun():
    proc = script("gopro/base2new_train.sh", "caltech101", 1,
                  env={"DRY_RUN": "1", "OUTPUT": "OUT", "DATA": "DATA", "NPROC": "2"})
    assert proc.returncode == 0, proc.stderr
    [line] = [line for line in proc.stdout.splitlines() if "train.py" in line]
    assert shlex.split(line)[:6] == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                                     "train.py"]
    proc = script("gopro/base2new_train.sh", "caltech101", 1, env={"DRY_RUN": "1", "NPROC": "two"})
    assert proc.returncode == 1 and 'NPROC must be a non-negative integer, got "two"' in proc.stderr
