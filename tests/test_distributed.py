"""Distributed runs on the CPU with 2 gloo processes, as ``torchrun --nproc_per_node 2 train.py`` runs them.

Through torchrun (the command line users run):
- CoOp, 1 epoch: one log, one checkpoint set and one results.json; the learned context equals a single
  process's on the same 16 images in one batch; the evaluation reduced over ranks equals a single-process
  ``--eval-only`` of the saved checkpoint on a test set of odd size (no sample lost or counted twice).
- GOPro, 1 epoch without a seed: finishes (shared seed, DistributedDataParallel with a static graph,
  cross-rank BatchNorm and the SimCLR gather), with no warning.
- a rank killed while training: the run ends within KILL_LIMIT_S seconds, the surviving rank says in one line
  that it lost contact, and torchrun names the killed rank.
- a corrupt image that only rank 1 reads: rank 1 says so in one line, rank 0 stops quietly, the run fails; a
  bad config value, which every rank sees: one line.

In two forked ranks (cheaper than torchrun, same process group):
- two steps of CoOp, CoCoOp, MaPLe and GOPro on the two halves of a batch of 8 (GOPro's MoCo and AugMix views
  included) give the losses, the weights, GOPro's BatchNorm running statistics and the reduced test accuracy
  of one process on the whole batch;
- the ranks' augmentation streams differ (transforms in the process and the loader workers' seeds), and an
  epoch's stream is the same whenever it is drawn again (a resumed run continues exactly);
- a loss computed outside ``training_forward`` (what a ported trainer that calls its model itself does) stops
  with the advice to use it, rather than training with gradients DDP never averaged;
- ``simclr_loss`` and ``batch_norm`` over 2 ranks equal one process on the concatenated batch, gradients
  included, and BatchNorm's pooled running statistics equal the single process's.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import REPO_ROOT, _train_env, read_results
from PIL import Image

import train
from promptlearn.engine import build_trainer
from promptlearn.errors import UserError
from promptlearn.modeling.losses import simclr_loss
from promptlearn.tools.make_demo_data import make_demo_dataset
from promptlearn.utils.distributed import batch_norm, use_cross_rank_batchnorm
from promptlearn.utils.tools import set_random_seed

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
KILL_LIMIT_S = 60  # measured: about 4 s from the kill to torchrun's exit on two shared CPU cores
STEP_METHODS = ("CoOp", "CoCoOp", "MaPLe", "GOPro")
GLOBAL_BATCH = 8


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


def finish_torchrun(popen, timeout=300, expect_success=True):
    popen.wait(timeout=timeout)
    popen.log.seek(0)
    output = popen.log.read()
    popen.log.close()
    if expect_success:
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


def corrupt_image_of_rank_1(root):
    """A data root whose only corrupt image is the second base-class training image, which rank 1 reads first
    (a sequential DistributedSampler deals the images out in turn) and rank 0 never reads."""
    make_demo_dataset(root, seed=0, split_sizes={"train": 8, "val": 2, "test": 3}, size=40)
    with open(os.path.join(root, "demo_shapes", "split_zhou_DemoShapes.json")) as f:
        second = [impath for impath, label, _ in json.load(f)["train"] if label < 5][1]
    path = os.path.join(root, "demo_shapes", "images", second)
    with open(path, "wb") as f:
        f.write(b"not an image")
    return path


@pytest.fixture(scope="module")
def torchruns(data_root, tmp_path_factory):
    """The torchrun runs, started together so that their start-ups overlap."""
    base = tmp_path_factory.mktemp("torchruns")
    out = {"coop": str(base / "coop"), "gopro": str(base / "gopro"), "killed": str(base / "killed"),
           "bad_image": str(base / "bad_image")}
    bad_image = corrupt_image_of_rank_1(str(base / "bad_image_data"))
    started = {
        "coop": start_torchrun(coop_args(data_root, out["coop"])),
        "gopro": start_torchrun(["--root", data_root, "--trainer", "GOPro", "--dataset-config-file", DATASET_YAML,
                                 "--config-file", GOPRO_YAML, "--output-dir", out["gopro"], *COMMON_OPTS]),
        # long enough to be killed while it trains
        "killed": start_torchrun(coop_args(data_root, out["killed"], opts=["OPTIM.MAX_EPOCH", "500",
                                                                           "TRAIN.PRINT_FREQ", "1",
                                                                           "TEST.NO_TEST", "True"])),
        "bad_image": start_torchrun(coop_args(str(base / "bad_image_data"), out["bad_image"],
                                              opts=["DATASET.NUM_SHOTS", "-1"])),
        # every rank sees it, before they form the process group
        "bad_value": start_torchrun(coop_args(data_root, str(base / "bad_value"), opts=["OPTIM.LR", "-1.0"])),
    }
    yield {"out": out, "popen": started, "output": {}, "bad_image": bad_image}
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
    assert sorted(os.listdir(dist_out)) == ["log.txt", "prompt_learner", "results.json", "run.json", "tensorboard"]
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


def worker_pids(torchrun_pid):
    """{rank: pid} of torchrun's worker processes (read from /proc: their parent and their RANK variable)."""
    ranks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            if parent != torchrun_pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                variables = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        ranks[int(variables[b"RANK"])] = int(entry)
    return ranks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the ranks' processes in /proc")
def test_a_killed_rank_ends_the_run_with_a_clear_message(torchruns):
    popen, log_path = torchruns["popen"]["killed"], os.path.join(torchruns["out"]["killed"], "log.txt")
    deadline = time.time() + 300
    while time.time() < deadline and popen.poll() is None:
        if os.path.exists(log_path):
            with open(log_path) as f:
                if "epoch 2/500," in f.read():
                    break
        time.sleep(0.2)
    assert popen.poll() is None, "the run ended before it could be killed"
    ranks = worker_pids(popen.pid)
    assert sorted(ranks) == [0, 1]
    killed_at = time.time()
    os.kill(ranks[1], signal.SIGKILL)
    output = finish_torchrun(popen, timeout=KILL_LIMIT_S, expect_success=False)
    assert time.time() - killed_at < KILL_LIMIT_S
    assert popen.returncode != 0
    rank0_lines = [line for line in output.splitlines() if line.startswith("error: rank 0")]
    assert len(rank0_lines) == 1, output[-3000:]
    assert "lost contact with the others" in rank0_lines[0] or "stopped by torchrun" in rank0_lines[0]
    assert "Root Cause" in output and "Signal 9 (SIGKILL)" in output  # torchrun's summary names the dead rank


def test_a_bad_input_seen_by_one_rank_is_reported_by_that_rank_alone(torchruns):
    popen = torchruns["popen"]["bad_image"]
    output = finish_torchrun(popen, expect_success=False)
    assert popen.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: cannot read image {torchruns['bad_image']} (cannot identify image file "
                      f"'{torchruns['bad_image']}'). Replace or delete the corrupt file (and remove it from the split "
                      "file)."], output[-3000:]
    assert "lost contact" not in output and "stopped by torchrun" not in output
    # the one traceback is torchrun's own (its launcher raises ChildFailedError to print its summary)
    assert output.count("Traceback") == 1 and 'train.py", line' not in output and "ChildFailedError" in output

    popen = torchruns["popen"]["bad_value"]
    output = finish_torchrun(popen, expect_success=False)
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert popen.returncode != 0 and errors == ["error: OPTIM.LR must be a number 0 or more, got -1.0"], output[-3000:]


# ------------------------------------------------------------------------------------ forked two-rank checks

def method_cfg(trainer, root, output_dir, batch_size):
    argv = ["--root", root, "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", os.path.join(REPO_ROOT, "configs", "trainers", trainer, "tiny_vit_demo.yaml"),
            "--output-dir", output_dir, *COMMON_OPTS, "DATALOADER.TRAIN_X.BATCH_SIZE", str(batch_size),
            "OPTIM.WARMUP_EPOCH", "0", "VERBOSE", "False"]
    return train.setup_cfg(train.build_parser().parse_args(argv))


def shard(batch, rank):
    """Rank ``rank``'s half of a batch (rows in rank order: the gathers and pooled statistics keep that order)."""
    rows = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
    return {key: value[rows] for key, value in batch.items()}


def two_steps(trainer, batch):
    """Two optimization steps on ``batch`` (no LR step); the losses they report and the learned state after."""
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 2
    losses = [trainer.forward_backward(batch)["loss"] for _ in range(2)]
    return losses, {k: v.detach().clone() for k, v in trainer.learner.state_dict().items()}


class WorkerDraw(torch.utils.data.Dataset):
    """One item drawn in a loader worker from its random generators (torch's and Python's)."""

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return torch.tensor([torch.rand(1).item(), random.random()])


def augmentation_draws(trainer, epoch):
    """What this rank's augmentation streams give in ``epoch``: GOPro's training views of one fixed image and a
    draw in a loader worker."""
    trainer.epoch = epoch
    trainer.before_epoch()
    pixels = (np.arange(40 * 40 * 3).reshape(40, 40, 3) % 251).astype(np.uint8)
    image = Image.fromarray(pixels)
    views = torch.cat([tfm(image).flatten() for tfm in trainer.dm.tfm_train])
    worker = next(iter(torch.utils.data.DataLoader(WorkerDraw(), num_workers=1)))
    return views, worker


def _steps_worker(rank, port, root, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        batches = torch.load(os.path.join(out_dir, "batches.pt"), weights_only=True)
        report = {}
        for method in STEP_METHODS:
            set_random_seed(1)
            trainer = build_trainer(method_cfg(method, root, os.path.join(out_dir, f"{method}{rank}"),
                                               GLOBAL_BATCH // WORLD))
            losses, state = two_steps(trainer, shard(batches[method], rank))
            report[method] = {"losses": losses, "state": state, "accuracy": trainer.test()}
        report["streams"] = [augmentation_draws(trainer, epoch) for epoch in (0, 0, 1)]
        # a loss computed outside training_forward (a ported trainer calling its model itself) is refused:
        # DistributedDataParallel would not average its gradients
        image, _ = trainer.parse_batch_train(shard(batches["GOPro"], rank))
        try:
            trainer.model_backward(trainer.model(image).sum())
        except UserError as err:
            report["outside_ddp"] = str(err)
        torch.save(report, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_as_one_process_on_the_whole_batch(data_root, tmp_path):
    torch.set_num_threads(1)
    single, batches = {}, {}
    for method in STEP_METHODS:
        set_random_seed(1)
        trainer = build_trainer(method_cfg(method, data_root, str(tmp_path / method), GLOBAL_BATCH))
        batch = next(iter(trainer.train_loader_x))  # augmented views made once, shared by both runs
        batches[method] = {key: value for key, value in batch.items() if torch.is_tensor(value)}
        single[method] = trainer
    torch.save(batches, tmp_path / "batches.pt")
    # forked, not spawned: the workers need nothing that this process has not imported already
    ranks = mp.start_processes(_steps_worker, args=(free_port(), data_root, str(tmp_path)), nprocs=WORLD,
                               start_method="fork", join=False)
    expected = {}
    for method, trainer in single.items():
        initial = {k: v.detach().clone() for k, v in trainer.learner.state_dict().items()}
        losses, state = two_steps(trainer, batches[method])
        expected[method] = {"losses": losses, "state": state, "initial": initial, "accuracy": trainer.test()}
    while not ranks.join():
        pass
    reports = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    for method in STEP_METHODS:
        one, (a, b) = expected[method], (reports[0][method], reports[1][method])
        # each rank's loss is its half's mean; their mean is the whole batch's loss
        for step in range(2):
            assert (a["losses"][step] + b["losses"][step]) / 2 == pytest.approx(one["losses"][step], rel=1e-5), method
        for key, value in one["state"].items():
            moved = (value - one["initial"][key]).abs().max()
            assert torch.equal(a["state"][key], b["state"][key]), (method, key)  # the ranks stay identical
            torch.testing.assert_close(a["state"][key], value, rtol=0, atol=1e-6 + 1e-3 * float(moved),
                                       msg=f"{method} {key}")
        moved = max(float((v - one["initial"][k]).abs().max()) for k, v in one["state"].items()
                    if v.is_floating_point())
        assert moved > 1e-4, method  # the steps did something the comparison can see
        assert a["accuracy"] == b["accuracy"] == one["accuracy"], method
    # GOPro's projector normalized with the whole batch's statistics: the same running statistics
    for key in ("simproj.norm.running_mean", "simproj.norm.running_var"):
        assert not torch.equal(expected["GOPro"]["state"][key], expected["GOPro"]["initial"][key])
    # augmentation: the ranks draw different streams; an epoch's stream repeats; the next epoch's differs
    (views0, worker0), (again0, worker_again0), (next0, _) = reports[0]["streams"]
    (views1, worker1), _, _ = reports[1]["streams"]
    assert not torch.equal(views0, views1) and not torch.equal(worker0, worker1)
    assert torch.equal(views0, again0) and torch.equal(worker0, worker_again0)
    assert not torch.equal(views0, next0)
    for report in reports:
        assert "outside the engine's DistributedDataParallel" in report["outside_ddp"]
        assert "self.training_forward" in report["outside_ddp"]


def _features(seed=0, batch=8, dim=16):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=generator), torch.randn(batch, dim, generator=generator)


def _norm_inputs(seed=0, batch=8, channels=3):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, generator=generator) * torch.tensor([1.0, 3.0, 0.5])
    x = x + torch.tensor([0.0, 2.0, -1.0])
    return x, torch.randn(batch, channels, generator=generator)  # inputs, and weights of a loss on the output


def _norm_layer():
    layer = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.5, 0.5, -1.0]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return layer


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

        x_all, w_all = _norm_inputs()
        x = x_all[rows].clone().requires_grad_(True)
        layer = _norm_layer()
        out = batch_norm(layer, x)
        (out * w_all[rows]).sum().backward()
        frozen = _norm_layer()
        batch_norm(frozen, x_all[rows], update_stats=False)
        # a model's own BatchNorm layer, converted in place: the same computation through its forward
        net = torch.nn.Sequential(torch.nn.Identity(), _norm_layer())
        weight = net[1].weight
        converted = use_cross_rank_batchnorm(net)
        net_out = net(x_all[rows])
        torch.save({"loss": loss.detach(), "grad_a": a.grad, "grad_b": b.grad, "norm_out": out.detach(),
                    "norm_grad_x": x.grad, "norm_grad_weight": layer.weight.grad,
                    "running": (layer.running_mean, layer.running_var, layer.num_batches_tracked),
                    "untouched": (frozen.running_mean, frozen.running_var), "converted": converted,
                    "same_weight": net[1].weight is weight, "net_out": net_out.detach(),
                    "net_running_var": net[1].running_var}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_simclr_loss_and_batch_norm_across_ranks(tmp_path):
    mp.start_processes(_ranks_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    z_a, z_b = (z.clone().requires_grad_(True) for z in _features())
    loss = simclr_loss(z_a, z_b, temperature=0.1)
    loss.backward()
    # the mean of the ranks' losses is the loss of the whole batch
    torch.testing.assert_close(sum(r["loss"] for r in ranks) / WORLD, loss.detach())
    # each rank's inputs receive the gradients of every rank's loss; divided by the number of ranks (DDP
    # averages parameter gradients over ranks) that is the single-process gradient of the whole batch's loss
    torch.testing.assert_close(torch.cat([r["grad_a"] for r in ranks]) / WORLD, z_a.grad)
    torch.testing.assert_close(torch.cat([r["grad_b"] for r in ranks]) / WORLD, z_b.grad)

    # BatchNorm over the two halves = BatchNorm over the whole batch: output, gradients, running statistics
    x_all, w_all = _norm_inputs()
    x = x_all.clone().requires_grad_(True)
    layer = _norm_layer()
    out = layer(x)
    (out * w_all).sum().backward()
    torch.testing.assert_close(torch.cat([r["norm_out"] for r in ranks]), out.detach())
    torch.testing.assert_close(torch.cat([r["norm_grad_x"] for r in ranks]), x.grad)
    torch.testing.assert_close(sum(r["norm_grad_weight"] for r in ranks), layer.weight.grad)
    for r in ranks:
        mean, var, count = r["running"]
        torch.testing.assert_close(mean, layer.running_mean)
        torch.testing.assert_close(var, layer.running_var)  # pooled exactly (an average of the halves' is not)
        assert int(count) == 1
        assert torch.equal(r["untouched"][0], torch.zeros(3)) and torch.equal(r["untouched"][1], torch.ones(3))
        assert r["converted"] == 1 and r["same_weight"]  # an optimizer built before keeps updating it
        torch.testing.assert_close(r["net_running_var"], layer.running_var)
    torch.testing.assert_close(torch.cat([r["net_out"] for r in ranks]), out.detach())
    halves = [x_all[:4].var(0), x_all[4:].var(0)]
    assert not torch.allclose((halves[0] + halves[1]) / 2 * 0.1 + 0.9, layer.running_var)
