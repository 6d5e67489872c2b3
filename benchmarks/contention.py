"""GOPro's training step under CPU contention: ours vs the reference-cost path, on the machine as it is and beside
CPU-bound processes started here.

Paths (``benchmarks/whole_step.py``): ours = the loader's views of the batch, made in the training process
(``DATALOADER.NUM_WORKERS`` 0, the worst case for contention), then the step; the reference = the official
step with its device -> PIL -> device views inside. Also the views alone: ours (PIL blur, one torch thread
per view), the same transforms as they were before (torchvision's 23 x 23 blur convolution, the caller's
thread pool), and the reference's round trip. Rounds alternate: every path timed on the machine as it is,
then again while ``--load`` busy processes (a Python loop, one core each) run beside it; the slowdown is
the median busy time over the median quiet time.

The whole measurement runs twice, in fresh processes: with OpenMP's default wait policy (a thread that
reaches a barrier spins before it sleeps, so on a busy machine the threads of each parallel region wait
for one that lost its core) and with ``OMP_WAIT_POLICY=PASSIVE`` (they sleep at once), which ``train.py``
sets unless the environment says otherwise. The policy is read when torch loads OpenMP, hence the
processes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if "--measure-here" not in sys.argv:  # a measuring child runs under the policy its parent gave it
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Dict, List

import torch
from tabulate import tabulate
from torchvision.transforms import Compose, GaussianBlur

from benchmarks.common import build_clip, machine_load, main, median, resolve, time_paths, timing_text
from benchmarks.whole_step import MethodCase
from promptlearn.data.transforms.views import PILGaussianBlur

BUSY_LOOP = "while True:\n    pass\n"


POLICIES = ("default", "PASSIVE")


@dataclass
class ContentionResult:
    policy: str
    path: str
    quiet: List[float]
    busy: List[float]
    load_quiet: str
    load_busy: str

    @property
    def slowdown(self) -> float:
        return median(self.busy) / median(self.quiet)

    def to_json(self) -> dict:
        return {**asdict(self), "slowdown": self.slowdown}


def format_contention(results: List[ContentionResult]) -> str:
    rows = [[r.policy, r.path, timing_text(r.quiet), timing_text(r.busy), f"{r.slowdown:.2f}x"] for r in results]
    table = tabulate(rows, headers=["OMP_WAIT_POLICY", "path", "quiet", "beside the busy processes", "slowdown"],
                     disable_numparse=True)
    loads = sorted({f"{r.policy}: quiet {r.load_quiet}; busy {r.load_busy}" for r in results})
    return "\n".join([table, *loads])


@contextmanager
def busy_processes(count: int):
    """``count`` CPU-bound Python processes for the duration of the block (stopped by their ids)."""
    processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let them reach the scheduler's steady state
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


def previous_views(case: MethodCase) -> Compose:
    """The MoCo v3 view as it was: torchvision's blur convolution, on the caller's thread pool."""
    transforms = [GaussianBlur(t.kernel_size, t.sigma) if isinstance(t, PILGaussianBlur) else t
                  for t in case.moco.transforms]
    return Compose(transforms)


def measure_here(device: str, backbone: str, precision: str, repeats: int, classes: int, load: int,
                 policy: str = "as started"):
    """One measurement in this process, under the wait policy it started with (``policy`` names it)."""
    device, backbone, precision = resolve(device, backbone, precision)
    clip_model = build_clip(backbone, device, precision)
    case = MethodCase("GOPro", clip_model, classes, device, precision, eval_batch=1)
    steps = case.train_paths(with_reference=True)
    old_moco, old_augmix = previous_views(case), Compose(case.augmix.transforms)
    paths: Dict[str, object] = {
        "ours: views in the training process + step": lambda: (steps["views"](), steps["ours"]()),
        "reference: step with its round-trip views": steps["reference"],
        "views, ours (PIL blur, one thread per view)": steps["views"],
        "views, before (torchvision blur, thread pool)": lambda: [[view(image) for image in case.raw]
                                                                 for view in (old_moco, old_augmix)],
        "views, reference (device -> PIL -> device, B^2 AugMix)": lambda: case.gopro_ref.round_trip_views(case.image),
    }
    for path in paths.values():
        path()  # warm-up
    quiet = {name: [] for name in paths}
    busy = {name: [] for name in paths}
    for i in range(repeats):  # quiet and busy rounds alternate, so that both meet the machine's other work alike
        load_quiet = machine_load()
        for name, seconds in time_paths(paths, device, 1, warm_up=False, first_round=i).items():
            quiet[name] += seconds
        with busy_processes(load):
            for name, seconds in time_paths(paths, device, 1, warm_up=False, first_round=i).items():
                busy[name] += seconds
            load_busy = f"{machine_load()} with {load} busy process(es) started here"
    return [ContentionResult(policy, name, quiet[name], busy[name], load_quiet, load_busy) for name in paths]


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5, classes: int = 5,
        load: int = 1, policies=POLICIES) -> List[ContentionResult]:
    """``measure_here`` in a fresh process per OpenMP wait policy (with this process's torch threads)."""
    results = []
    for policy in policies:
        env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "results.json")
            command = [sys.executable, os.path.abspath(__file__), "--measure-here", out, "--policy", policy,
                       "--device", device,
                       "--repeats", str(repeats), "--classes", str(classes), "--load", str(load)]
            command += ["--backbone", backbone] if backbone else []
            command += ["--precision", precision] if precision else []
            command += ["--threads", str(torch.get_num_threads())]
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            with open(out) as f:
                results += [ContentionResult(**row) for row in json.load(f)]
    return results


def add_arguments(parser) -> None:
    parser.add_argument("--classes", type=int, default=5, help="classes of the GOPro step (default 5)")
    parser.add_argument("--load", type=int, default=1, help="CPU-bound processes started beside the benchmark")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES),
                        help="OpenMP wait policies to measure under (one fresh process each)")


def child(argv) -> None:
    """``--measure-here OUT ...``: one measurement in this process, written to OUT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--measure-here", required=True)
    parser.add_argument("--policy", required=True)
    for name, kind, default in (("--device", str, "cpu"), ("--backbone", str, ""), ("--precision", str, ""),
                                ("--repeats", int, 5), ("--classes", int, 5), ("--load", int, 1),
                                ("--threads", int, 0)):
        parser.add_argument(name, type=kind, default=default)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure_here(args.device, args.backbone, args.precision, args.repeats, args.classes, args.load,
                           args.policy)
    with open(args.measure_here, "w") as f:
        json.dump([asdict(r) for r in results], f)


if __name__ == "__main__":
    if "--measure-here" in sys.argv:
        child(sys.argv[1:])
    else:
        main(run, __doc__.split("\n")[0], add_arguments=add_arguments, table=format_contention)
