"""Checkpoint files and reliability: Dassl's layout written atomically, loading under PyTorch's safe
(weights-only) unpickler with clear errors for missing, corrupt or unsafe files, Dassl's partial weight
loading, and a NaN loss that stops training with one message while the earlier checkpoints stay."""
import os
import stat

import pytest
import torch
import torch.nn as nn
from conftest import REPO_ROOT

from promptlearn.errors import UserError
from promptlearn.utils import (
    atomic_write,
    load_checkpoint,
    load_pretrained_weights,
    save_checkpoint,
)
from promptlearn.utils.torchtools import resume_point
from trainers.coop import CoOp


def state(epoch, value=1.0):
    return {"state_dict": {"module.weight": torch.full((2, 3), value), "bias": torch.zeros(2)}, "epoch": epoch,
            "optimizer": None, "scheduler": None, "val_result": None}


def test_save_checkpoint_layout(tmp_path):
    directory = str(tmp_path / "prompt_learner")
    path = save_checkpoint(state(3), directory)
    assert path == os.path.join(directory, "model.pth.tar-3")
    with open(os.path.join(directory, "checkpoint")) as f:
        assert f.read() == "model.pth.tar-3\n"
    loaded = torch.load(path, weights_only=True)
    assert set(loaded["state_dict"]) == {"weight", "bias"}  # a leading "module." is removed
    save_checkpoint(state(4, 2.0), directory, is_best=True)
    best = torch.load(os.path.join(directory, "model-best.pth.tar"), weights_only=True)
    assert best["epoch"] == 4 and torch.equal(best["state_dict"]["weight"], torch.full((2, 3), 2.0))
    assert resume_point(directory) == os.path.join(directory, "model.pth.tar-4")
    # a named file is written beside the others and never becomes the resume point
    save_checkpoint(state(5), directory, model_name="model-best.pth.tar")
    with open(os.path.join(directory, "checkpoint")) as f:
        assert f.read() == "model.pth.tar-4\n"
    assert sorted(os.listdir(directory)) == ["checkpoint", "model-best.pth.tar", "model.pth.tar-3",
                                             "model.pth.tar-4"]  # no temporary files
    assert resume_point(str(tmp_path / "elsewhere")) is None


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "model.pth.tar-1"
    path.write_bytes(b"good checkpoint")
    with pytest.raises(RuntimeError), atomic_write(str(path), "wb") as f:
        f.write(b"half a checkp")
        raise RuntimeError("killed while writing")
    assert path.read_bytes() == b"good checkpoint"
    assert os.listdir(tmp_path) == ["model.pth.tar-1"]


def test_atomically_written_files_get_ordinary_permissions(tmp_path):
    """Files written through a temporary file get the permissions any new file gets (the umask applies),
    so checkpoints, results.json and few-shot caches stay readable by others as usual."""
    old_umask = os.umask(0o022)
    try:
        (tmp_path / "ordinary.txt").write_text("x")
        path = save_checkpoint(state(1), str(tmp_path / "prompt_learner"))
        with atomic_write(str(tmp_path / "results.json")) as f:
            f.write("{}")
    finally:
        os.umask(old_umask)
    expected = stat.S_IMODE(os.stat(tmp_path / "ordinary.txt").st_mode)
    assert expected == 0o644
    for written in [path, os.path.join(os.path.dirname(path), "checkpoint"), str(tmp_path / "results.json")]:
        assert stat.S_IMODE(os.stat(written).st_mode) == expected, written


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(str(tmp_path / "model.pth.tar-9"))
    good = save_checkpoint(state(1), str(tmp_path))
    truncated = tmp_path / "truncated.pth.tar"
    with open(good, "rb") as f:
        truncated.write_bytes(f.read()[:100])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_checkpoint(str(truncated))
    unsafe = tmp_path / "unsafe.pth.tar"
    torch.save({"state_dict": {}, "extra": nn.Linear(1, 1)}, unsafe)  # a pickled module, not just tensors
    with pytest.raises(UserError, match="trusted=True"):
        load_checkpoint(str(unsafe))
    assert isinstance(load_checkpoint(str(unsafe), trusted=True)["extra"], nn.Linear)


def test_load_pretrained_weights_keeps_matching_tensors(tmp_path, engine_log):
    source = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5))
    target = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 6))  # second layer has another shape
    path = save_checkpoint({"state_dict": source.state_dict(), "epoch": 1}, str(tmp_path))
    before = target[1].weight.detach().clone()
    load_pretrained_weights(target, path)
    assert torch.equal(target[0].weight, source[0].weight) and torch.equal(target[0].bias, source[0].bias)
    assert torch.equal(target[1].weight, before)
    assert "Not loaded (no tensor of that name and shape in the model): ['1.weight', '1.bias']" in engine_log.messages
    with pytest.raises(UserError, match="no weights"):
        load_pretrained_weights(nn.Linear(7, 7), path)


def test_nan_loss_stops_training_and_keeps_earlier_checkpoints(cli, demo_root, tmp_path, monkeypatch):
    original = CoOp.compute_loss

    def nan_from_the_second_epoch(self, batch, image, label):
        loss, summary = original(self, batch, image, label)
        if self.epoch >= 1:
            loss = loss * float("nan")
        return loss, summary

    monkeypatch.setattr(CoOp, "compute_loss", nan_from_the_second_epoch)
    out = tmp_path / "out"
    code, stdout, stderr = cli([
        "--root", demo_root, "--seed", "1", "--trainer", "CoOp",
        "--dataset-config-file", os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml"),
        "--config-file", os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "tiny_vit_demo.yaml"),
        "--output-dir", out, "DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_FREQ", "1"])
    assert code == 1 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: the loss became infinite or NaN at epoch 2, batch 1; training stopped.")
    assert str(out) in lines[0]
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-1"]
    checkpoint = torch.load(out / "prompt_learner" / "model.pth.tar-1", weights_only=True)
    assert checkpoint["epoch"] == 1 and torch.isfinite(checkpoint["state_dict"]["ctx"]).all()
    with open(out / "log.txt") as f:
        log = f.read()
    assert lines[0] in log and "Finish training" not in log
