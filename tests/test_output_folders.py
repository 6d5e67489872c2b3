"""Output folders one can trust (README, "Output folders"), through ``train.py``'s command line:

- a rerun into a folder that holds a run with other settings (shots, LR, epochs, dataset), without a record of
  its run, or with a broken resume pointer, stops with one line and leaves every file as it was, byte for byte;
  ``--start-over`` moves the old files to ``replaced/<time>/`` and starts afresh (the advice after a NaN stop);
- evaluations write into a folder of their own, need weights unless the trainer learns nothing, refuse to
  replace the results of another model, and refuse checkpoints of another trainer, backbone or class count;
- bad input stops with one line (YAML that does not parse, bad numbers, flags after the KEY VALUE pairs, a
  folder that cannot be written, a corrupt image read by a DataLoader worker); PROMPTLEARN_DEBUG shows the
  traceback; NUM_SHOTS 0 or negative is refused, more than a class has is a warning naming the classes;
- two runs started together into one folder: exactly one runs, the other names it;
- checkpoints by default every TRAIN.CHECKPOINT_MINUTES, each interim one replacing the last; a run killed near
  the end of a long run resumes from its latest one (not from epoch 0), equals an uninterrupted run bit for
  bit, takes over the lock the killed run left and removes the temporary files of interrupted writes.
"""
import glob
import json
import os
import shutil
import signal
import sys
import time

import pytest
import torch
import yaml
from conftest import (
    REPO_ROOT,
    finish_train,
    folder_digest,
    one_error_line,
    read_results,
    start_train,
)

import train
from promptlearn.config import get_cfg_default
from promptlearn.data.datasets.base_dataset import DatasetBase, Datum
from promptlearn.errors import UserError
from promptlearn.tools.make_demo_data import make_demo_dataset
from promptlearn.utils.logger import close_logger
from trainers.coop import CoOp

DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
COOP_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "tiny_vit_demo.yaml")
COCOOP_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "CoCoOp", "tiny_vit_demo.yaml")
FAST = ["DATALOADER.NUM_WORKERS", "0", "DATASET.SUBSAMPLE_CLASSES", "base"]
TRAINED = {  # name: (config file, options): the models the tests load, resume or refuse
    "coop": (COOP_YAML, ["DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "2", "TRAIN.CHECKPOINT_FREQ", "1"]),
    "cocoop": (COCOOP_YAML, ["DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1"]),
    "tiny_rn": (COOP_YAML, ["DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1", "MODEL.BACKBONE.NAME", "tiny-RN"]),
    "csc": (COOP_YAML, ["DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1", "TRAINER.COOP.CSC", "True",
                        "TRAINER.COOP.CTX_INIT", "''"]),
}


def args(root, output_dir, *opts, trainer="CoOp", config=COOP_YAML, dataset=DATASET_YAML, flags=()):
    return ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", dataset,
            "--config-file", config, "--output-dir", output_dir, *flags, *FAST, *opts]


def trained_args(name, root, output_dir, *more, flags=()):
    config, opts = TRAINED[name]
    trainer = "CoCoOp" if name == "cocoop" else "CoOp"
    return args(root, str(output_dir), *opts, *more, trainer=trainer, config=config, flags=flags)


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """The folders of the finished training runs of TRAINED (made in this process, as ``cli`` runs them)."""
    base = tmp_path_factory.mktemp("trained")
    folders = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIP_WEIGHTS_DIR", str(base / "no_weights"))
        for name in TRAINED:
            folders[name] = str(base / name)
            try:
                assert train.cli(trained_args(name, demo_root, folders[name])) == 0, name
            finally:
                close_logger()
    return folders


def copy_run(trained, name, tmp_path):
    target = str(tmp_path / name)
    shutil.copytree(trained[name], target)
    return target


def read(path):
    with open(path) as f:
        return f.read()


def new_logs(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("log.txt-"))


# -- a rerun with other settings ------------------------------------------------------------------------------

@pytest.mark.parametrize("change,shown", [
    (["DATASET.NUM_SHOTS", "8"], "DATASET.NUM_SHOTS: 2 in the folder, 8 now"),
    (["OPTIM.LR", "0.002"], "OPTIM.LR: 0.02 in the folder, 0.002 now"),
    (["OPTIM.MAX_EPOCH", "4"], "OPTIM.MAX_EPOCH: 2 in the folder, 4 now"),
    (["dataset"], 'DATASET.NAME: "DemoShapes" in the folder, "Caltech101" now'),
])
def test_a_rerun_with_other_settings_is_refused(cli, demo_root, trained, tmp_path, change, shown):
    folder = copy_run(trained, "coop", tmp_path)
    before = folder_digest(folder)
    if change == ["dataset"]:
        other = tmp_path / "caltech101.yaml"
        other.write_text(yaml.safe_dump({"DATASET": {"NAME": "Caltech101"}}))
        argv = trained_args("coop", demo_root, folder)
        argv[argv.index(DATASET_YAML)] = str(other)
    else:
        argv = trained_args("coop", demo_root, folder, *change)
    line = one_error_line(*cli(argv))
    assert line.startswith(f"error: {folder} holds a training run with other settings ({shown})")
    assert "another --output-dir" in line and "--start-over" in line and "TAG" in line and "RESTART=1" in line
    assert folder_digest(folder) == before  # results.json, checkpoints and logs as they were


def test_after_a_nan_stop_a_lower_lr_starts_over(cli, demo_root, tmp_path, monkeypatch):
    """The advice of the NaN message works: a lower LR is refused in the same folder, and --start-over trains
    afresh with it, the old run's files kept aside byte for byte."""
    original = CoOp.compute_loss

    def nan_from_the_second_epoch(self, batch, image, label):
        loss, summary = original(self, batch, image, label)
        return (loss * float("nan") if self.epoch >= 1 else loss), summary

    monkeypatch.setattr(CoOp, "compute_loss", nan_from_the_second_epoch)
    out = str(tmp_path / "out")
    opts = ["DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "2", "TRAIN.CHECKPOINT_FREQ", "1", "OPTIM.WARMUP_EPOCH", "0"]
    line = one_error_line(*cli(args(demo_root, out, *opts, "OPTIM.LR", "1e30")))
    assert "the loss became infinite or NaN" in line and "--start-over" in line
    monkeypatch.undo()
    before = folder_digest(out)
    line = one_error_line(*cli(args(demo_root, out, *opts, "OPTIM.LR", "0.002")))
    assert "OPTIM.LR: 1e+30 in the folder, 0.002 now" in line
    assert folder_digest(out) == before

    code, stdout, stderr = cli(args(demo_root, out, *opts, "OPTIM.LR", "0.002", flags=["--start-over"]))
    assert code == 0, stderr
    [replaced] = glob.glob(os.path.join(out, "replaced", "*"))
    assert folder_digest(replaced) == before  # the old run, moved aside whole
    assert f"--start-over: the files that were in {out} are now in {replaced}" in stdout
    assert "No checkpoint to resume from: training starts at epoch 1" in read(os.path.join(out, "log.txt"))
    checkpoint = torch.load(os.path.join(out, "prompt_learner", "model.pth.tar-2"), weights_only=True)
    assert checkpoint["optimizer"]["param_groups"][0]["initial_lr"] == 0.002
    assert torch.isfinite(checkpoint["state_dict"]["ctx"]).all()
    assert read_results(out)["test"]["epoch"] == 2


def test_another_code_version_and_another_resume_source_are_refused(cli, demo_root, trained, tmp_path):
    folder = copy_run(trained, "coop", tmp_path)
    record = json.loads(read(os.path.join(folder, "run.json")))
    record["definition"]["code_version"] = "0.9.0"
    with open(os.path.join(folder, "run.json"), "w") as f:
        json.dump(record, f)
    before = folder_digest(folder)
    line = one_error_line(*cli(trained_args("coop", demo_root, folder)))
    assert 'code_version: "0.9.0" in the folder, "1.0.0" now' in line
    assert folder_digest(folder) == before

    out = str(tmp_path / "elsewhere")  # --resume DIR: the checkpoints of another run
    line = one_error_line(*cli(trained_args("coop", demo_root, out, "OPTIM.LR", "0.1",
                                            flags=["--resume", trained["coop"]])))
    assert f"--resume {trained['coop']} holds another run than this one (OPTIM.LR: 0.02 in the folder" in line


def test_the_definition_of_a_run(demo_root):
    """Every key that changes what a run computes, the trainer's own node only; not where or how it runs."""
    from promptlearn.engine.run_folder import run_definition

    argv = trained_args("coop", demo_root, "out")
    definition = run_definition(train.setup_cfg(train.build_parser().parse_args(argv)), "training")
    assert definition["TRAINER.COOP.N_CTX"] == 4 and definition["OPTIM.LR"] == 0.02
    assert definition["DATASET.NUM_SHOTS"] == 2 and definition["TRAIN.CHECKPOINT_FREQ"] == 1
    assert definition["INPUT.SIZE"] == [32, 32] and definition["world_size"] == 1
    assert definition["kind"] == "training" and definition["code_version"] == "1.0.0"
    for key in ("OUTPUT_DIR", "DATASET.ROOT", "DATALOADER.NUM_WORKERS", "TRAIN.PRINT_FREQ", "USE_CUDA",
                "TRAIN.CHECKPOINT_MINUTES", "DATASET.SOURCE_DOMAINS", "TRAINER.GOPRO.N_CTX"):
        assert key not in definition, key


def test_a_folder_without_a_record_of_its_run_is_refused(cli, demo_root, trained, tmp_path):
    folder = copy_run(trained, "coop", tmp_path)
    os.remove(os.path.join(folder, "run.json"))
    before = folder_digest(folder)
    line = one_error_line(*cli(trained_args("coop", demo_root, folder)))
    assert "holds results or checkpoints but no readable run.json" in line and "--start-over" in line
    assert folder_digest(folder) == before


@pytest.mark.parametrize("pointer,expected", [
    ("", "checkpoint is empty, so the checkpoint to resume from is unknown (the newest here is model.pth.tar-2)"),
    ("model.pth.tar-7\n", "checkpoint names model.pth.tar-7, which is not in"),
    (None, "but no 'checkpoint' file naming the one to resume from"),
])
def test_a_broken_resume_pointer_stops_the_run(cli, demo_root, trained, tmp_path, pointer, expected):
    """Instead of training from scratch over the files that are there."""
    folder = copy_run(trained, "coop", tmp_path)
    path = os.path.join(folder, "prompt_learner", "checkpoint")
    if pointer is None:
        os.remove(path)
    else:
        with open(path, "w") as f:
            f.write(pointer)
    os.remove(os.path.join(folder, "results.json"))  # an interrupted run
    before = folder_digest(folder)
    line = one_error_line(*cli(trained_args("coop", demo_root, folder)))
    assert expected in line and "--start-over" in line
    assert folder_digest(folder) == before


def test_a_rerun_removes_temporary_files_of_interrupted_writes(cli, demo_root, trained, tmp_path):
    folder = copy_run(trained, "coop", tmp_path)
    leftovers = [os.path.join(folder, "prompt_learner", ".model.pth.tar-3." + "a" * 32 + ".tmp"),
                 os.path.join(folder, ".results.json." + "b" * 32 + ".tmp")]
    for path in leftovers:
        with open(path, "wb") as f:
            f.write(b"half a file")
    code, out, err = cli(trained_args("coop", demo_root, folder, "TRAIN.PRINT_FREQ", "1"))  # not a setting of the run
    assert code == 0, err
    assert not any(os.path.exists(path) for path in leftovers)
    assert "Removed 2 temporary file(s) of writes that a stopped run left unfinished" in out
    assert read_results(folder) == read_results(trained["coop"])  # same run: resumed, nothing left to train


# -- evaluations ----------------------------------------------------------------------------------------------

def eval_args(root, output_dir, model_dir, epoch=None, *more, name="coop"):
    flags = ["--eval-only", "--model-dir", str(model_dir)] + (["--load-epoch", str(epoch)] if epoch else [])
    return trained_args(name, root, output_dir, *more, flags=flags)


def test_eval_only_writes_into_a_folder_of_its_own(cli, demo_root, trained, tmp_path):
    folder = copy_run(trained, "coop", tmp_path)
    before = folder_digest(folder)
    for model_dir in (folder, ""):  # into the training folder, with or without --model-dir
        line = one_error_line(*cli(eval_args(demo_root, folder, model_dir, 2)))
        assert f"{folder} holds a training run and this is an evaluation" in line and "--output-dir" in line
    assert folder_digest(folder) == before
    evaluated = str(tmp_path / "eval")  # and a training does not go into an evaluation's folder
    assert cli(eval_args(demo_root, evaluated, trained["coop"], 2))[0] == 0
    before = folder_digest(evaluated)
    line = one_error_line(*cli(trained_args("coop", demo_root, evaluated)))
    assert f"{evaluated} holds an evaluation and this is a training run" in line
    assert folder_digest(evaluated) == before


def test_eval_only_needs_weights_unless_the_trainer_learns_nothing(cli, demo_root, tmp_path):
    out = str(tmp_path / "eval")
    line = one_error_line(*cli(args(demo_root, out, "DATASET.NUM_SHOTS", "1", flags=["--eval-only"])))
    assert "CoOp learns prompt_learner, so --eval-only needs the weights to evaluate: pass --model-dir" in line
    assert not os.path.exists(os.path.join(out, "results.json"))
    code, _, err = cli(args(demo_root, str(tmp_path / "zs"), trainer="ZeroshotCLIP", flags=["--eval-only"]))
    assert code == 0, err


def test_an_evaluation_does_not_replace_the_results_of_another_model(cli, demo_root, trained, tmp_path):
    out = str(tmp_path / "eval")
    assert cli(eval_args(demo_root, out, trained["coop"], 2))[0] == 0
    first = read_results(out)
    assert cli(eval_args(demo_root, out, trained["coop"], 2))[0] == 0  # the same model again: done again
    assert read_results(out) == first
    before = folder_digest(out)
    line = one_error_line(*cli(eval_args(demo_root, out, trained["coop"], 1)))  # another epoch's weights
    assert "holds an evaluation with other settings (the weights evaluated: other files or contents" in line
    assert folder_digest(out) == before


@pytest.mark.parametrize("name,opts,expected", [
    ("cocoop", [], "was saved by CoCoOp on tiny-ViT for 5 classes of DemoShapes, and this run builds CoOp on tiny-ViT"),
    ("tiny_rn", [], "was saved by CoOp on tiny-RN for 5 classes of DemoShapes, and this run builds CoOp on tiny-ViT"),
    ("csc", ["DATASET.SUBSAMPLE_CLASSES", "all", "TRAINER.COOP.CSC", "True", "TRAINER.COOP.CTX_INIT", "''"],
     "was saved for 5 classes and this run has 10, and prompt_learner's learned parameters depend on the number"),
])
def test_a_checkpoint_of_another_trainer_backbone_or_class_count_is_refused(cli, demo_root, trained, tmp_path,
                                                                           name, opts, expected):
    out = str(tmp_path / "eval")
    argv = args(demo_root, out, "DATASET.NUM_SHOTS", "1", *opts,
                flags=["--eval-only", "--model-dir", trained[name], "--load-epoch", "1"])
    line = one_error_line(*cli(argv))
    assert expected in line
    assert not os.path.exists(os.path.join(out, "results.json"))


def test_a_checkpoint_with_parameters_the_model_has_no_place_for_is_refused(cli, demo_root, trained, tmp_path):
    model_dir = copy_run(trained, "coop", tmp_path)
    path = os.path.join(model_dir, "prompt_learner", "model.pth.tar-2")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["state_dict"]["meta_net.linear1.weight"] = torch.zeros(2, 2)  # same trainer and backbone
    torch.save(checkpoint, path)
    line = one_error_line(*cli(eval_args(demo_root, tmp_path / "eval", model_dir, 2)))
    assert "holds parameters that prompt_learner has no place for (meta_net.linear1.weight)" in line


# -- one line for bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("opts,expected", [
    (["DATALOADER.TRAIN_X.BATCH_SIZE", "0"], "DATALOADER.TRAIN_X.BATCH_SIZE must be an integer 1 or more, got 0"),
    (["DATALOADER.TEST.BATCH_SIZE", "-4"], "DATALOADER.TEST.BATCH_SIZE must be an integer 1 or more, got -4"),
    (["OPTIM.LR", "-0.1"], "OPTIM.LR must be a number 0 or more, got -0.1"),
    (["OPTIM.MAX_EPOCH", "0"], "OPTIM.MAX_EPOCH must be an integer 1 or more, got 0"),
    (["TRAIN.PRINT_FREQ", "0"], "TRAIN.PRINT_FREQ must be an integer 1 or more, got 0"),
    (["DATASET.NUM_SHOTS", "0"], "DATASET.NUM_SHOTS must be the number of training images per class (1 or more)"),
    (["DATASET.NUM_SHOTS", "-3"], "or -1 for every training image; got -3"),
    (["OPTIM.LR", "0.1", "--output-dir", "x"], "--output-dir comes after the KEY VALUE pairs: flags go first"),
    (["OPTIM", "0.1"], "command line: OPTIM is a group of keys"),
])
def test_bad_numbers_and_misplaced_flags(cli, demo_root, tmp_path, opts, expected):
    out = tmp_path / "out"
    line = one_error_line(*cli(args(demo_root, out, *opts)))
    assert expected in line
    assert not out.exists()  # refused before anything is written


def test_a_yaml_that_does_not_parse(cli, demo_root, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("OPTIM:\n  LR: 0.1\n  MAX_EPOCH: [2\n")
    line = one_error_line(*cli(args(demo_root, tmp_path / "out", config=str(config))))
    assert line.startswith(f"error: {config} is not valid YAML: ") and "at line 4, column 1" in line
    config.write_text("- OPTIM\n- LR\n")
    line = one_error_line(*cli(args(demo_root, tmp_path / "out", config=str(config))))
    assert f"{config} must hold KEY: value pairs" in line


def test_an_output_folder_that_cannot_be_written(cli, demo_root, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    line = one_error_line(*cli(args(demo_root, a_file / "out", "DATASET.NUM_SHOTS", "1")))
    assert f"the output folder {a_file / 'out'} cannot be made: it, or a folder above it, is a file" in line
    if os.geteuid() == 0:  # root writes anywhere a permission allows: /sys refuses everyone
        if not sys.platform.startswith("linux"):
            return
        unwritable = "/sys/promptlearn_test_output"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        unwritable = str(locked / "out")
    line = one_error_line(*cli(args(demo_root, unwritable, "DATASET.NUM_SHOTS", "1")))
    assert f"the output folder {unwritable} cannot be made" in line and "another --output-dir" in line


def test_a_corrupt_image_read_by_a_dataloader_worker(cli, tmp_path):
    root = str(tmp_path / "data")
    make_demo_dataset(root, seed=0, split_sizes={"train": 2, "val": 1, "test": 1}, size=16)
    for path in glob.glob(os.path.join(root, "demo_shapes", "images", "*", "*")):
        with open(path, "wb") as f:
            f.write(b"not an image")
    argv = args(root, tmp_path / "out", "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1")
    argv[argv.index("DATALOADER.NUM_WORKERS") + 1] = "2"
    line = one_error_line(*cli(argv))
    assert line.startswith("error: cannot read image ") and "Replace or delete the corrupt file" in line


def test_the_debug_switch_shows_the_traceback(cli, demo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLEARN_DEBUG", "1")
    with pytest.raises(UserError, match="OPTIM.MAX_EPOCH must be an integer 1 or more"):
        cli(args(demo_root, tmp_path / "out", "OPTIM.MAX_EPOCH", "0"))


def test_more_shots_than_a_class_has_takes_all_of_its_images_with_a_warning(tmp_path, engine_log):
    """Dassl's rule, so that the few-shot subsets equal the reference code's; the warning names the classes."""
    items = [Datum(impath=f"/d/{c}{i}.jpg", label=label, classname=c)
             for label, (c, n) in enumerate([("cat", 5), ("dog", 2), ("owl", 1)]) for i in range(n)]
    dataset = DatasetBase(train_x=items, val=items, test=items)
    train_items, _ = dataset.load_or_create_fewshot(str(tmp_path / "cache"), 3, 1, items, items)
    counts = {c: sum(item.classname == c for item in train_items) for c in ("cat", "dog", "owl")}
    assert counts == {"cat": 3, "dog": 2, "owl": 1}
    warnings = [m for m in engine_log.messages if m.startswith("WARNING: DATASET.NUM_SHOTS")]
    assert warnings == ["WARNING: DATASET.NUM_SHOTS is 3, but 2 of 3 classes have fewer training images, and all "
                        "of theirs are used (as Dassl does): dog (2), owl (1)"]


# -- two runs, one folder -------------------------------------------------------------------------------------

LONG_RUN = ["DATASET.NUM_SHOTS", "1", "TRAIN.PRINT_FREQ", "1", "OPTIM.WARMUP_EPOCH", "0"]


def wait_for_line(path, text, popen, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and popen.poll() is None:
        if os.path.exists(path) and text in read(path):
            return True
        time.sleep(0.1)
    return False


def test_two_runs_started_together_into_one_folder(demo_root, tmp_path):
    out = str(tmp_path / "out")
    argv = args(demo_root, out, *LONG_RUN, "OPTIM.MAX_EPOCH", "500", "TEST.NO_TEST", "True",
                "TRAIN.CHECKPOINT_MINUTES", "-1")
    runs = [start_train(argv, env_extra={"OMP_NUM_THREADS": "1"}) for _ in range(2)]
    try:
        deadline = time.time() + 300
        while time.time() < deadline and all(run.poll() is None for run in runs):
            time.sleep(0.1)
        [loser] = [run for run in runs if run.poll() is not None]
        [winner] = [run for run in runs if run is not loser]
        assert winner.poll() is None and wait_for_line(os.path.join(out, "log.txt"), "epoch 2/500,", winner)
    finally:
        for run in runs:
            if run.poll() is None:
                run.send_signal(signal.SIGKILL)
        refused, _ = (finish_train(run, check=False) for run in (loser, winner))
    line = one_error_line(refused.returncode, refused.stdout, refused.stderr)
    assert line.startswith(f"error: another run is using {out}: process {winner.pid} on ")
    assert "train.py" in line and "another --output-dir" in line
    assert sorted(os.listdir(out)) == [".lock", "log.txt", "run.json", "tensorboard"]  # one run's files


# -- checkpoints, kills and resume ------------------------------------------------------------------------------

def test_interim_checkpoints_replace_each_other(cli, demo_root, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = cli(args(demo_root, out, "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "4",
                                    "TRAIN.CHECKPOINT_FREQ", "2", "TRAIN.CHECKPOINT_MINUTES", "0", "TEST.NO_TEST",
                                    "True"))
    assert code == 0, stderr
    for epoch in (1, 2, 3, 4):
        assert f"Saved {out / 'prompt_learner' / f'model.pth.tar-{epoch}'}" in stdout
    for epoch in (1, 3):  # interim: replaced by the next checkpoint; 2 and 4 are kept (CHECKPOINT_FREQ 2)
        removed = out / "prompt_learner" / f"model.pth.tar-{epoch}"
        assert f"Removed {removed}: an interim resume point, replaced by epoch {epoch + 1}'s" in stdout
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-4"]


def test_checkpoints_are_written_periodically_by_default():
    assert 0 < get_cfg_default().TRAIN.CHECKPOINT_MINUTES <= 10
    for path in glob.glob(os.path.join(REPO_ROOT, "configs", "trainers", "*", "*.yaml")):
        with open(path) as f:
            assert "CHECKPOINT_MINUTES" not in f.read(), path


def test_a_run_killed_near_its_end_resumes_from_its_last_checkpoint_exactly(demo_root, tmp_path):
    epochs = 30
    argv = {name: args(demo_root, str(tmp_path / name), *LONG_RUN, "OPTIM.MAX_EPOCH", str(epochs),
                       "TRAIN.CHECKPOINT_MINUTES", "0.002")
            for name in ("straight", "killed")}
    single = {"OMP_NUM_THREADS": "1"}
    straight, killed = start_train(argv["straight"], env_extra=single), start_train(argv["killed"], env_extra=single)
    killed_dir = tmp_path / "killed"
    try:
        assert wait_for_line(str(killed_dir / "log.txt"), f"epoch {epochs - 4}/{epochs},", killed)
        killed.send_signal(signal.SIGKILL)
    finally:
        finish_train(killed, check=False)
        finish_train(straight)
    assert killed.returncode == -signal.SIGKILL
    assert (killed_dir / ".lock").exists()  # left by the killed run
    leftover = killed_dir / "prompt_learner" / (".model.pth.tar-99." + "c" * 32 + ".tmp")
    leftover.write_bytes(b"half a checkpoint")

    resumed = finish_train(start_train(argv["killed"], env_extra=single))
    [log_name] = new_logs(killed_dir)
    log = read(killed_dir / log_name)
    assert "which no longer runs: taken over" in log and "Removed 1 temporary file(s)" in log
    trained = int(log.split(" epoch(s) already trained")[0].rsplit("\n", 1)[-1])
    assert epochs - 10 <= trained < epochs  # not from epoch 0: at most a few epochs lost
    assert f"epoch {trained + 1}/{epochs}," in log and f"epoch {trained}/{epochs}," not in log
    assert "Traceback" not in resumed.stderr and not leftover.exists()

    learner = killed_dir / "prompt_learner"
    # the interim resume points are gone, those the killed run was writing or replacing too
    assert sorted(os.listdir(learner)) == ["checkpoint", f"model.pth.tar-{epochs}"]
    a = torch.load(tmp_path / "straight" / "prompt_learner" / f"model.pth.tar-{epochs}", weights_only=True)
    b = torch.load(learner / f"model.pth.tar-{epochs}", weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert torch.equal(a["optimizer"]["state"][0]["momentum_buffer"], b["optimizer"]["state"][0]["momentum_buffer"])
    assert read_results(str(killed_dir))["test"] == read_results(str(tmp_path / "straight"))["test"]
    record = json.loads(read(killed_dir / "run.json"))
    assert len(record["starts"]) == 2 and record["definition"]["OPTIM.MAX_EPOCH"] == epochs
    assert {"time", "host", "commit", "argv"} <= set(record["starts"][1])
