"""Every benchmark runs once on the CPU with the tiny ViT, at small sizes: each checks its optimized paths against
the paths they replace (the whole steps against the official cost, for every method) before timing them, and
reports finite positive ratios; the memory model predicts the bytes autograd saves in a step within 5%."""
import math

import pytest
import torch

from benchmarks import (
    contention,
    eval_text_cache,
    gopro_views,
    imagenet_memory,
    per_image_prompts,
    run_all,
    text_cost,
    whole_step,
)
from benchmarks.common import format_table


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier and faster than several threads for these small sizes
    yield
    torch.set_num_threads(threads)


PAIRWISE = {text_cost: {"classes": 12}, per_image_prompts: {}, eval_text_cache: {}, gopro_views: {}}


@pytest.mark.parametrize("module", list(PAIRWISE), ids=lambda module: module.__name__.rsplit(".", 1)[1])
def test_benchmark_runs(module, one_thread):
    results = module.run(device="cpu", backbone="tiny-ViT", repeats=1, **PAIRWISE[module])
    assert results
    for result in results:
        assert math.isfinite(result.speedup) and result.speedup > 0, result
        assert result.memory_ratio is None  # peak memory is measured on CUDA only
        assert len(result.naive_samples) == len(result.optimized_samples) == 1
    assert all(result.case in format_table(results) for result in results)


def test_whole_steps_of_every_method_run_against_the_official_cost(one_thread):
    results = whole_step.run(device="cpu", backbone="tiny-ViT", repeats=1, classes=[3], eval_batch=3)
    assert {(r.method, r.phase) for r in results} == {(m, p) for m in whole_step.METHODS for p in ("train", "eval")}
    for r in results:
        assert math.isfinite(r.speedup) and r.speedup > 0 and math.isfinite(r.over_floor), r
        if r.phase == "train":
            assert 0 < r.kept_bytes["ours"] < r.kept_bytes["reference"]  # 77-token prompts keep more
    assert "GOPro" in whole_step.format_steps(results)
    assert next(r for r in results if r.method == "GOPro" and r.phase == "train").seconds("views") > 0


def test_memory_model_predicts_what_autograd_saves(one_thread):
    results = imagenet_memory.run(device="cpu", backbone="tiny-ViT", measure=True, classes=40, recompute=[0, 16])
    assert len(results) == 2 * len(imagenet_memory.CASES)
    for r in results:
        assert r.text_bytes < r.reference_text_bytes / 3
        if r.recompute_batch:
            assert r.measured_saved is None
        else:
            assert r.measured_saved == pytest.approx(r.text_bytes, rel=0.05)
    by_key = {(r.method, r.recompute_batch): r for r in results}
    assert by_key[("GOPro", 16)].text_bytes < by_key[("GOPro", 0)].text_bytes / 2


def test_contention_measures_every_path_quiet_and_busy(one_thread):
    # one measurement in this process (the command line runs one per OpenMP wait policy, in fresh processes)
    results = contention.measure_here("cpu", "tiny-ViT", "", repeats=1, classes=2, load=1)
    assert len(results) == 5 and all(len(r.quiet) == len(r.busy) == 1 for r in results)
    assert all(math.isfinite(r.slowdown) and r.slowdown > 0 for r in results)
    assert "busy process" in contention.format_contention(results)


def test_run_all_covers_every_module():
    assert set(run_all.MODULES) == {text_cost, per_image_prompts, eval_text_cache, gopro_views, whole_step,
                                    imagenet_memory}
