"""Every benchmark runs once on the CPU with the tiny ViT: each checks that its optimized path computes what
the naive one does before timing them, and reports finite positive ratios."""
import math

import pytest
import torch

from benchmarks import eval_text_cache, gopro_views, per_image_prompts, run_all, text_truncation
from benchmarks.common import format_table


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier and faster than several threads for these small sizes
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("module", [text_truncation, per_image_prompts, eval_text_cache, gopro_views],
                         ids=lambda module: module.__name__.rsplit(".", 1)[1])
def test_benchmark_runs(module, one_thread):
    results = module.run(device="cpu", backbone="tiny-ViT", repeats=1)
    assert results
    for result in results:
        assert math.isfinite(result.speedup) and result.speedup > 0, result
        assert result.memory_ratio is None  # peak memory is measured on CUDA only
    assert all(result.case in format_table(results) for result in results)


def test_run_all_covers_every_module():
    assert set(run_all.MODULES) == {text_truncation, per_image_prompts, eval_text_cache, gopro_views}
