"""Run every benchmark: the text tokens table, the naive vs optimized cases, the whole steps and the ImageNet-size
memory, each in its table (the contention benchmark, minutes long, runs on its own: ``benchmarks/contention.py``).

    python benchmarks/run_all.py [--device cpu|cuda] [--backbone NAME] [--precision fp16|fp32]
                                 [--repeats N] [--threads N] [--json FILE]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

import json

import torch

from benchmarks import eval_text_cache, gopro_views, imagenet_memory, per_image_prompts, text_cost, whole_step
from benchmarks.common import describe, format_table, machine_load, parse_args, resolve

#: modules whose results are (naive, optimized) pairs: one table
PAIRWISE = (text_cost, per_image_prompts, eval_text_cache, gopro_views)
#: modules with a table of their own
MODULES = (*PAIRWISE, whole_step, imagenet_memory)


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5) -> dict:
    """Every module's results, by module name."""
    results = {}
    for module in MODULES:
        results[module.__name__.rsplit(".", 1)[1]] = module.run(device=device, backbone=backbone, precision=precision,
                                                               repeats=repeats)
    return results


def main(argv=None) -> dict:
    args = parse_args(__doc__.split("\n")[0], argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, backbone, precision = resolve(args.device, args.backbone, args.precision)
    header = describe(device, backbone, precision, args.repeats)
    print(text_cost.tokens_table())
    print(header)
    results = run(device=args.device, backbone=backbone, precision=precision, repeats=args.repeats)
    pairs = [r for module in PAIRWISE for r in results[module.__name__.rsplit(".", 1)[1]]]
    print(format_table(pairs))
    print(whole_step.format_steps(results["whole_step"]))
    print(imagenet_memory.format_memory(results["imagenet_memory"]))
    print(f"after the run: {machine_load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setting": header, "load_after": machine_load(),
                       "results": {name: [r.to_json() for r in rows] for name, rows in results.items()}}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
