"""Distributed runs on the CPU with 2 gloo processes, as ``torchrun --nproc_per_node 2 train.py`` runs them.

- CoOp, 1 epoch: one log, one checkpoint set and one results.json; the learned context equals a single
  process's on the same 16 images in one batch (gradients averaged over ranks); the evaluation reduced
  over ranks equals a single-process ``--eval-only`` of the saved checkpoint on a test set of odd size
  (no sample lost or counted twice).
- GOPro, 1 epoch without a seed: finishes (shared seed, cross-rank SimCLR gather, BatchNorm statistics).
- ``simclr_loss`` over 2 ranks equals the single-process loss on the concatenated batch, with the same
  gradients reaching both ranks' inputs; BatchNorm running statistics are averaged over ranks.
"""
import os
import socket
import subprocess
import sys
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import REPO_ROOT, _train_env, read_results

from promptlearn.modeling.losses import simclr_loss
from promptlearn.tools.make_demo_data import make_demo_dataset
from promptlearn.utils.distributed import average_running_stats

DATASET_YAML = os.path.join(REPO_ROOT, "configs", "datasets", "demo_shapes.yaml")
COOP_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "CoOp", "tiny_vit_demo.yaml")
GOPRO_YAML = os.path.join(REPO_ROOT, "configs", "trainers", "GOPro", "tiny_vit_demo.yaml")
WORLD = 2
# 4 shots x 5 base classes = 20 training images: 10 per rank, one batch of 8 each, which together are
# images 0..15 (a sequential DistributedSampler deals them out in turn); 3 x 5 = 15 test images: 8 + 7
COMMON_OPTS = ["DATASET.NUM_SHOTS", "4", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "1",
               "DATALOADER.NUM_WORKERS", "0"]
COOP_OPTS = [*COMMON_OPTS, "DATALOADER.TRAIN_X.SAMPLER", "SequentialSampler", "INPUT.TRANSFORMS", "['normalize']",
             "OPTIM.WARMUP_EPOCH", "0", "TEST.PER_CLASS_RESULT", "True"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_torchrun(args):
    """``python -m torch.distributed.run --nproc_per_node 2 train.py ARGS`` in the background; its output goes
    to a temporary file (a pipe could fill up while another run is awaited)."""
    env = _train_env({"OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD),
               "--master_port", str(free_port()), os.path.join(REPO_ROOT, "train.py"), *map(str, args)]
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in finish_torchrun)
    popen = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    popen.log = log
    return popen


def finish_torchrun(popen, timeout=300):
    popen.wait(timeout=timeout)
    popen.log.seek(0)
    output = popen.log.read()
    popen.log.close()
    assert popen.returncode == 0, f"torchrun failed ({popen.returncode}):\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist_data")
    make_demo_dataset(str(root), seed=0, split_sizes={"train": 8, "val": 2, "test": 3}, size=40)
    return str(root)


def coop_args(root, output_dir, flags=(), opts=()):
    return ["--root", root, "--seed", "1", "--trainer", "CoOp", "--dataset-config-file", DATASET_YAML,
            "--config-file", COOP_YAML, "--output-dir", output_dir, *flags, *COOP_OPTS, *opts]


def load_ctx(output_dir):
    path = os.path.join(output_dir, "prompt_learner", "model.pth.tar-1")
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]["ctx"]


def initial_ctx():
    from promptlearn.modeling import backbones, prompts

    clip_model = backbones.load_clip("tiny-ViT").float()
    return prompts.init_context(clip_model, 4, "a photo of a")[0]


@pytest.fixture(scope="module")
def torchruns(data_root, tmp_path_factory):
    """Both torchrun runs, started together so that their start-ups overlap."""
    base = tmp_path_factory.mktemp("torchruns")
    out = {"coop": str(base / "coop"), "gopro": str(base / "gopro")}
    started = {
        "coop": start_torchrun(coop_args(data_root, out["coop"])),
        "gopro": start_torchrun(["--root", data_root, "--trainer", "GOPro", "--dataset-config-file", DATASET_YAML,
                                 "--config-file", GOPRO_YAML, "--output-dir", out["gopro"], *COMMON_OPTS]),
    }
    yield {"out": out, "popen": started, "output": {}}
    for popen in started.values():
        if popen.poll() is None:  # a test failed before waiting for it: torchrun stops its workers on SIGTERM
            popen.terminate()
            popen.wait()


def torchrun_output(torchruns, name):
    if name not in torchruns["output"]:
        torchruns["output"][name] = finish_torchrun(torchruns["popen"][name])
    return torchruns["output"][name]


def test_coop_torchrun_matches_single_process(data_root, torchruns, tmp_path, cli):
    dist_out = torchruns["out"]["coop"]
    single_out, eval_out = str(tmp_path / "single"), str(tmp_path / "eval")
    # meanwhile, in this process, the same 16 images as one batch: the step with averaged gradients must match
    assert cli(coop_args(data_root, single_out, opts=["DATALOADER.TRAIN_X.BATCH_SIZE", "16",
                                                      "TEST.NO_TEST", "True"]))[0] == 0
    output = torchrun_output(torchruns, "coop")

    assert "Traceback" not in output
    assert sorted(os.listdir(dist_out)) == ["log.txt", "prompt_learner", "results.json", "tensorboard"]
    assert sorted(os.listdir(os.path.join(dist_out, "prompt_learner"))) == ["checkpoint", "model.pth.tar-1"]
    assert len(os.listdir(os.path.join(dist_out, "tensorboard"))) == 1
    with open(os.path.join(dist_out, "log.txt")) as f:
        assert f.read().count("=> result") == 1

    ctx_dist, ctx_single = load_ctx(dist_out), load_ctx(single_out)
    step = (ctx_single - initial_ctx()).abs().max()
    assert step > 1e-4
    torch.testing.assert_close(ctx_dist, ctx_single, rtol=0, atol=float(step) * 1e-4)

    assert cli(coop_args(data_root, eval_out, flags=["--eval-only", "--model-dir", dist_out,
                                                     "--load-epoch", "1"]))[0] == 0
    reduced, single_eval = read_results(dist_out)["test"], read_results(eval_out)["test"]
    assert reduced["total"] == 15
    for key in ("total", "correct", "accuracy", "macro_f1", "perclass_accuracy"):
        assert reduced[key] == pytest.approx(single_eval[key]), key


def test_gopro_torchrun_without_seed(torchruns):
    out = torchruns["out"]["gopro"]
    output = torchrun_output(torchruns, "gopro")
    assert "Traceback" not in output and "FutureWarning" not in output
    assert "No seed given: every rank uses the random seed" in output
    assert sorted(os.listdir(os.path.join(out, "gopro"))) == ["checkpoint", "model.pth.tar-1"]
    assert read_results(out)["test"]["total"] == 15


def _features(seed=0, batch=8, dim=16):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=generator), torch.randn(batch, dim, generator=generator)


def _ranks_worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        z_a, z_b = _features()
        local = z_a.shape[0] // WORLD
        rows = slice(rank * local, (rank + 1) * local)
        a = z_a[rows].clone().requires_grad_(True)
        b = z_b[rows].clone().requires_grad_(True)
        loss = simclr_loss(a, b, temperature=0.1)
        loss.backward()

        norm = torch.nn.BatchNorm1d(3)
        norm(torch.randn(4, 3, generator=torch.Generator().manual_seed(rank)) + rank)
        own_stats = (norm.running_mean.clone(), norm.running_var.clone())
        average_running_stats(norm)
        torch.save({"loss": loss.detach(), "grad_a": a.grad, "grad_b": b.grad, "own_stats": own_stats,
                    "synced": (norm.running_mean, norm.running_var)}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_simclr_loss_and_running_stats_across_ranks(tmp_path):
    # forked, not spawned: the workers need nothing that this process has not imported already
    mp.start_processes(_ranks_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    z_a, z_b = (z.clone().requires_grad_(True) for z in _features())
    loss = simclr_loss(z_a, z_b, temperature=0.1)
    loss.backward()
    # the mean of the ranks' losses is the loss of the whole batch
    torch.testing.assert_close(sum(r["loss"] for r in ranks) / WORLD, loss.detach())
    # each rank's inputs receive the gradients of every rank's loss; divided by the number of ranks (the trainer
    # averages parameter gradients over ranks) that is the single-process gradient of the whole batch's loss
    grad_a = torch.cat([r["grad_a"] for r in ranks]) / WORLD
    grad_b = torch.cat([r["grad_b"] for r in ranks]) / WORLD
    torch.testing.assert_close(grad_a, z_a.grad)
    torch.testing.assert_close(grad_b, z_b.grad)

    mean = sum(r["own_stats"][0] for r in ranks) / WORLD
    var = sum(r["own_stats"][1] for r in ranks) / WORLD
    for r in ranks:
        torch.testing.assert_close(r["synced"][0], mean)
        torch.testing.assert_close(r["synced"][1], var)
