"""Run every benchmark and print one table of naive vs optimized ratios.

    python benchmarks/run_all.py [--device cpu|cuda] [--backbone NAME] [--precision fp16|fp32]
                                 [--repeats N] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import eval_text_cache, gopro_views, per_image_prompts, text_truncation
from benchmarks.common import main as benchmark_main

MODULES = (text_truncation, per_image_prompts, eval_text_cache, gopro_views)


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5):
    results = []
    for module in MODULES:
        results += module.run(device=device, backbone=backbone, precision=precision, repeats=repeats)
    return results


def main(argv=None):
    return benchmark_main(run, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
