"""End-to-end runs of ``train.py`` as a user runs it, on the generated DemoShapes with the tiny CLIP:
CoOp training (log, checkpoints, tensorboard, result lines, results.json), evaluation of a saved epoch,
new-class evaluation from a base-class checkpoint, zero-shot CLIP, exact resume after an interruption,
and the error for ViT-B/16 weights that are not on the machine (given before anything is written).

The runs are shared by the tests of this module and started in two waves of overlapping processes
(each one spends seconds importing torch); ``runs`` holds their results."""
import glob
import os
import re
import shutil

import pytest
import torch
from conftest import REPO_ROOT, finish_train, parse_accuracy, read_results, start_train

DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
COOP_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "tiny_vit_demo.yaml")
EPOCHS = 3
# 4 shots x 5 base classes = 20 training images = 2 batches of 8 per epoch; 5 x 4 = 20 test images
COOP_OPTS = ["DATASET.NUM_SHOTS", "4", "OPTIM.MAX_EPOCH", str(EPOCHS), "TRAIN.CHECKPOINT_FREQ", "1",
             "DATALOADER.NUM_WORKERS", "0"]
VIT_B16_URL = ("https://openaipublic.azureedge.net/clip/models/"
               "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt")
NO_NETWORK = {key: "http://127.0.0.1:9" for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
NO_NETWORK.update(no_proxy="", NO_PROXY="")


def coop_args(root, output_dir, subsample="base", flags=()):
    return ["--root", root, "--seed", "1", "--trainer", "CoOp", "--dataset-config-file", DATASET_YAML,
            "--config-file", COOP_YAML, "--output-dir", output_dir, *flags, *COOP_OPTS,
            "DATASET.SUBSAMPLE_CLASSES", subsample]


def checkpoint_file(output_dir, epoch):
    return os.path.join(output_dir, "prompt_learner", f"model.pth.tar-{epoch}")


def make_it_look_stopped_after(source, target, epoch):
    """A copy of a finished run whose newest checkpoint is ``epoch``, as if it had been interrupted."""
    shutil.copytree(source, target)
    for path in glob.glob(os.path.join(target, "prompt_learner", "model.pth.tar-*")):
        if int(path.rsplit("-", 1)[1]) > epoch:
            os.remove(path)
    with open(os.path.join(target, "prompt_learner", "checkpoint"), "w") as f:
        f.write(f"model.pth.tar-{epoch}\n")
    os.remove(os.path.join(target, "results.json"))


@pytest.fixture(scope="module")
def runs(demo_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    names = ("straight", "resumed", "finished", "eval_base", "eval_new", "zeroshot", "vit")
    out = {name: str(base / name) for name in names}
    weights_dir = str(base / "clip_weights")

    first_wave = {
        "straight": start_train(coop_args(demo_root, out["straight"])),
        "zeroshot": start_train(["--root", demo_root, "--trainer", "ZeroshotCLIP", "--dataset-config-file",
                                 DATASET_YAML, "--config-file", COOP_YAML, "--output-dir", out["zeroshot"],
                                 "--eval-only"]),
        "vit": start_train(["--root", demo_root, "--trainer", "CoOp", "--dataset-config-file", DATASET_YAML,
                            "--config-file", COOP_YAML, "--output-dir", out["vit"], "MODEL.BACKBONE.NAME", "ViT-B/16",
                            "INPUT.SIZE", "(224, 224)"], env_extra={"CLIP_WEIGHTS_DIR": weights_dir, **NO_NETWORK}),
    }
    results = {"straight": finish_train(first_wave.pop("straight"))}

    make_it_look_stopped_after(out["straight"], out["resumed"], EPOCHS - 1)
    make_it_look_stopped_after(out["straight"], out["finished"], EPOCHS)
    eval_flags = ["--eval-only", "--model-dir", out["straight"], "--load-epoch", str(EPOCHS)]
    second_wave = {
        "resumed": start_train(coop_args(demo_root, out["resumed"])),
        "finished": start_train(coop_args(demo_root, out["finished"])),
        "eval_base": start_train(coop_args(demo_root, out["eval_base"], "base", eval_flags)),
        "eval_new": start_train(coop_args(demo_root, out["eval_new"], "new", eval_flags)),
    }
    for name, popen in {**first_wave, **second_wave}.items():
        results[name] = finish_train(popen, check=name != "vit")
    return {"proc": results, "out": out, "weights_dir": weights_dir}


def read_log(output_dir, name="log.txt"):
    with open(os.path.join(output_dir, name)) as f:
        return f.read()


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_coop_training_outputs(runs):
    out = runs["out"]["straight"]
    no_traceback(runs["proc"]["straight"])
    assert sorted(os.listdir(os.path.join(out, "prompt_learner"))) == [
        "checkpoint", "model.pth.tar-1", "model.pth.tar-2", "model.pth.tar-3"]
    with open(os.path.join(out, "prompt_learner", "checkpoint")) as f:
        assert f.read() == "model.pth.tar-3\n"
    log = read_log(out)
    for line in ["Setting fixed seed: 1", "trainer: CoOp", "dataset: DemoShapes", "Classes: the base half (5 of 10)",
                 "Initial context: \"a photo of a\"", "Number of context words (tokens): 4",
                 "No checkpoint to resume from: training starts at epoch 1", f"Saved {checkpoint_file(out, 3)}",
                 "Finish training", "Final evaluation: the last epoch", "Evaluation on the test split", "=> result"]:
        assert line in log.splitlines()
    assert re.search(r"^epoch 3/3, batch 2/2: loss \d\.\d{4} \(\d\.\d{4}\), acc [\d.]+ \([\d.]+\); "
                     r"lr \d\.\d{3}e-\d\d; \d+\.\d{3} s/batch \(data \d+\.\d{3} s\); eta \d+:\d\d:\d\d$", log, re.M)
    assert re.search(r"^Elapsed: \d+:\d\d:\d\d$", log, re.M)
    # the result lines, in Dassl's format: 20 base-class test images
    block = log[log.rindex("=> result"):].splitlines()[:6]
    assert block[1:3] == ["* total: 20", f"* correct: {round(parse_accuracy(log) * 20 / 100)}"]
    assert [line.split(":")[0] for line in block[3:]] == ["* accuracy", "* error", "* macro_f1"]
    assert all(re.fullmatch(r"\* \w+: \d+\.\d%", line) for line in block[3:])
    # what the console shows is what the log holds
    assert "* accuracy:" in runs["proc"]["straight"].stdout


def test_results_json(runs):
    out = runs["out"]["straight"]
    results = read_results(out)
    log = read_log(out)
    test = results["test"]
    assert round(test["accuracy"], 1) == parse_accuracy(log)
    assert test["error_rate"] == pytest.approx(100 - test["accuracy"])
    assert (test["total"], test["epoch"]) == (20, EPOCHS)
    assert test["correct"] == round(test["accuracy"] * 20 / 100)
    assert results["run"] == {"trainer": "CoOp", "dataset": "DemoShapes", "subsample_classes": "base",
                              "num_shots": 4, "seed": 1, "backbone": "tiny-ViT", "num_classes": 5}


def test_tensorboard_events(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    directory = os.path.join(runs["out"]["straight"], "tensorboard")
    assert glob.glob(os.path.join(directory, "events.out.tfevents.*"))
    events = EventAccumulator(directory)
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "train/lr", "test/accuracy", "test/error_rate", "test/macro_f1"} <= tags
    lr = {e.step: e.value for e in events.Scalars("train/lr")}
    # first batch of each epoch: constant warmup 1e-5, then cosine over T = 3 shifted by one epoch
    assert [lr[epoch * 2] for epoch in range(EPOCHS)] == pytest.approx([1e-5, 0.02, 0.015], rel=1e-5)
    assert events.Scalars("test/accuracy")[-1].value == pytest.approx(read_results(runs["out"]["straight"])
                                                                       ["test"]["accuracy"], rel=1e-6)


def test_checkpoints_load_with_weights_only(runs):
    out = runs["out"]["straight"]
    for epoch in range(1, EPOCHS + 1):
        checkpoint = load(checkpoint_file(out, epoch))
        assert checkpoint["epoch"] == epoch
        assert set(checkpoint["state_dict"]) == {"ctx", "token_prefix", "token_suffix"}
        assert checkpoint["state_dict"]["ctx"].shape == (4, 64)
        assert checkpoint["optimizer"]["param_groups"][0]["lr"] > 0
        assert {"scheduler", "val_result", "rng_state"} <= set(checkpoint)
    first, last = load(checkpoint_file(out, 1)), load(checkpoint_file(out, EPOCHS))
    assert not torch.equal(first["state_dict"]["ctx"], last["state_dict"]["ctx"])  # it learned something


def test_eval_only_reproduces_the_test_accuracy(runs):
    out = runs["out"]["eval_base"]
    no_traceback(runs["proc"]["eval_base"])
    straight = read_results(runs["out"]["straight"])["test"]
    evaluated = read_results(out)["test"]
    assert evaluated["accuracy"] == straight["accuracy"] and evaluated["macro_f1"] == straight["macro_f1"]
    assert evaluated["epoch"] == EPOCHS
    log = read_log(out)
    assert parse_accuracy(log) == parse_accuracy(read_log(runs["out"]["straight"]))
    source = checkpoint_file(runs["out"]["straight"], EPOCHS)
    assert f'Loaded the weights of prompt_learner from "{source}" (epoch {EPOCHS})' in log
    assert "Finish training" not in log
    assert sorted(os.listdir(out)) == ["log.txt", "results.json", "run.json"]  # no tensorboard, no checkpoints


def test_new_classes_from_a_base_checkpoint(runs):
    out = runs["out"]["eval_new"]
    no_traceback(runs["proc"]["eval_new"])
    log = read_log(out)
    assert "Classes: the new half (5 of 10)" in log
    results = read_results(out)
    assert results["run"]["subsample_classes"] == "new" and results["run"]["num_classes"] == 5
    assert results["test"]["total"] == 20 and results["test"]["epoch"] == EPOCHS
    assert round(results["test"]["accuracy"], 1) == parse_accuracy(log)


def test_zeroshot_clip_eval_only(runs):
    out = runs["out"]["zeroshot"]
    no_traceback(runs["proc"]["zeroshot"])
    log = read_log(out)
    assert "trainer: ZeroshotCLIP" in log
    results = read_results(out)
    assert results["run"]["num_classes"] == 10 and results["test"]["total"] == 40
    assert results["test"]["epoch"] == 0  # nothing learned, nothing loaded
    assert round(results["test"]["accuracy"], 1) == parse_accuracy(log)
    assert sorted(os.listdir(out)) == ["log.txt", "results.json", "run.json"]


def test_resume_continues_exactly(runs):
    straight, resumed = runs["out"]["straight"], runs["out"]["resumed"]
    no_traceback(runs["proc"]["resumed"])
    a, b = load(checkpoint_file(straight, EPOCHS)), load(checkpoint_file(resumed, EPOCHS))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    momentum_a = a["optimizer"]["state"][0]["momentum_buffer"]
    assert torch.equal(momentum_a, b["optimizer"]["state"][0]["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]
    assert read_results(resumed)["test"]["accuracy"] == read_results(straight)["test"]["accuracy"]


def test_rerun_of_a_finished_run_reports_its_last_epoch(runs):
    """Nothing is left to train: the last checkpoint is evaluated and recorded under its own epoch."""
    finished = runs["out"]["finished"]
    no_traceback(runs["proc"]["finished"])
    assert read_results(finished)["test"]["epoch"] == EPOCHS
    assert read_results(finished)["test"]["accuracy"] == read_results(runs["out"]["straight"])["test"]["accuracy"]
    assert sorted(os.listdir(os.path.join(finished, "prompt_learner"))) == [
        "checkpoint", "model.pth.tar-1", "model.pth.tar-2", "model.pth.tar-3"]


def test_rerun_keeps_the_old_log(runs):
    straight, resumed = runs["out"]["straight"], runs["out"]["resumed"]
    assert read_log(resumed) == read_log(straight)  # the copied log of the first run is untouched
    new_logs = [name for name in os.listdir(resumed) if name.startswith("log.txt-")]
    assert len(new_logs) == 1 and re.fullmatch(r"log\.txt-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", new_logs[0])
    log = read_log(resumed, new_logs[0])
    assert f"Resuming prompt_learner from \"{checkpoint_file(resumed, EPOCHS - 1)}\"" in log
    assert f"{EPOCHS - 1} epoch(s) already trained" in log
    assert "epoch 3/3," in log and "epoch 1/3," not in log and "epoch 2/3," not in log


def test_missing_vit_b16_weights(runs):
    proc = runs["proc"]["vit"]
    no_traceback(proc)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    target = os.path.join(runs["weights_dir"], "ViT-B-16.pt")
    assert len(lines) == 1 and lines[0].startswith("error: CLIP weights for ViT-B/16 not found")
    assert target in lines[0] and VIT_B16_URL in lines[0] and "put it at" in lines[0]
    assert os.listdir(runs["weights_dir"]) == []  # nothing half-downloaded is left behind
    assert not os.path.exists(runs["out"]["vit"])  # checked before the run writes anything
