"""Few-shot sampling (Dassl's ``generate_fewshot_dataset``) and its cache files
``split_fewshot/shot_<K>-seed_<S>.pkl``: counts, the exact algorithm, determinism, atomic writes,
reuse, regeneration of unreadable caches and loading caches written by Dassl."""
import os
import pickle
import random
import sys
import types
from collections import Counter

import pytest

from promptlearn.data.datasets import base_dataset
from promptlearn.data.datasets.base_dataset import DatasetBase, Datum


def make_items(counts, label_order=None, shuffle_seed=None, root="/data"):
    """Datum list with ``counts[label]`` items per label; labels interleaved in ``label_order``."""
    label_order = label_order or sorted(counts)
    items = []
    remaining = dict(counts)
    while any(remaining.values()):
        for label in label_order:
            if remaining[label]:
                index = counts[label] - remaining[label]
                impath = f"{root}/c{label}/img_{index:03d}.jpg"
                items.append(Datum(impath=impath, label=label, classname=f"class{label}"))
                remaining[label] -= 1
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(items)
    return items


def reference_fewshot(items, num_shots, repeat=False):
    """The documented algorithm, written independently: per label in first-appearance order,
    random.sample(K) if the class has K or more items, else random.choices(K) with repeat, else all."""
    groups = {}
    for item in items:
        groups.setdefault(item.label, []).append(item)
    picked = []
    for label_items in groups.values():
        if len(label_items) >= num_shots:
            picked += random.sample(label_items, num_shots)
        elif repeat:
            picked += random.choices(label_items, k=num_shots)
        else:
            picked += label_items
    return picked


@pytest.fixture
def dataset():
    return DatasetBase.__new__(DatasetBase)  # only the sampling methods are used


def labels_in_order(items):
    seen = []
    for item in items:
        if item.label not in seen:
            seen.append(item.label)
    return seen


def test_counts_per_class_and_small_classes_kept_whole(dataset):
    items = make_items({0: 10, 1: 3, 2: 7, 3: 1}, shuffle_seed=1)
    random.seed(0)
    picked = dataset.generate_fewshot_dataset(items, num_shots=4)
    counts = Counter(item.label for item in picked)
    assert counts == {0: 4, 1: 3, 2: 4, 3: 1}
    # no repetition; classes below K keep every item exactly once
    assert len(set(picked)) == len(picked)
    assert {item for item in picked if item.label == 1} == {item for item in items if item.label == 1}
    assert set(picked) <= set(items)


def test_repeat_samples_with_replacement(dataset):
    items = make_items({0: 2, 1: 6})
    random.seed(3)
    picked = dataset.generate_fewshot_dataset(items, num_shots=5, repeat=True)
    counts = Counter(item.label for item in picked)
    assert counts == {0: 5, 1: 5}
    small = [item for item in picked if item.label == 0]
    assert len(set(small)) <= 2  # 5 picks from 2 items: repeats are unavoidable
    large = [item for item in picked if item.label == 1]
    assert len(set(large)) == 5  # a class with enough items is still sampled without replacement


@pytest.mark.parametrize("num_shots", [1, 2, 4, 16])
@pytest.mark.parametrize("repeat", [False, True])
def test_matches_independent_implementation_item_for_item(dataset, num_shots, repeat):
    items = make_items({5: 9, 0: 4, 3: 16, 7: 2, 1: 20}, label_order=[5, 0, 3, 7, 1], shuffle_seed=4)
    random.seed(11)
    picked = dataset.generate_fewshot_dataset(items, num_shots=num_shots, repeat=repeat)
    state_after = random.getstate()
    random.seed(11)
    expected = reference_fewshot(items, num_shots, repeat)
    assert [item.impath for item in picked] == [item.impath for item in expected]
    assert random.getstate() == state_after  # the same number of draws from Python's global random
    # labels come in order of first appearance in the input, not sorted
    assert labels_in_order(picked) == labels_in_order(items)
    assert labels_in_order(items) != sorted(labels_in_order(items))


def test_several_sources_and_no_sampling(dataset):
    train = make_items({0: 6, 1: 6})
    val = make_items({0: 3, 1: 5})
    random.seed(2)
    out_train, out_val = dataset.generate_fewshot_dataset(train, val, num_shots=4)
    assert Counter(i.label for i in out_train) == {0: 4, 1: 4}
    assert Counter(i.label for i in out_val) == {0: 3, 1: 4}
    assert dataset.generate_fewshot_dataset(train, num_shots=-1) is train
    assert dataset.generate_fewshot_dataset(train, num_shots=0) is train
    both = dataset.generate_fewshot_dataset(train, val, num_shots=-1)
    assert both[0] is train and both[1] is val


def test_deterministic_per_seed(dataset):
    items = make_items({label: 12 for label in range(6)}, shuffle_seed=0)

    def sample(seed):
        random.seed(seed)
        return [item.impath for item in dataset.generate_fewshot_dataset(items, num_shots=3)]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


# ---------------------------------------------------------------- cache files


def cache_path(cache_dir, shots, seed):
    return os.path.join(cache_dir, f"shot_{shots}-seed_{seed}.pkl")


def touch_all(items):
    """Create the (empty) image files the items name: a cache is only reused when its images exist."""
    for item in items:
        os.makedirs(os.path.dirname(item.impath), exist_ok=True)
        open(item.impath, "wb").close()
    return items


def test_cache_written_then_reused(dataset, tmp_path, engine_log):
    train = touch_all(make_items({0: 8, 1: 8, 2: 8}, root=str(tmp_path / "data")))
    val = touch_all(make_items({0: 4, 1: 4, 2: 4}, root=str(tmp_path / "data" / "val")))
    cache_dir = str(tmp_path / "split_fewshot")
    random.seed(1)
    first_train, first_val = dataset.load_or_create_fewshot(cache_dir, 2, 1, train, val)
    fpath = cache_path(cache_dir, 2, 1)
    assert os.path.isfile(fpath)
    assert os.listdir(cache_dir) == ["shot_2-seed_1.pkl"]  # no temporary file left behind
    assert Counter(i.label for i in first_train) == {0: 2, 1: 2, 2: 2}
    assert Counter(i.label for i in first_val) == {0: 2, 1: 2, 2: 2}  # val: min(K, 4) per class
    with open(fpath, "rb") as f:
        stored = pickle.load(f)
    assert stored == {"train": first_train, "val": first_val}
    assert f"Few-shot lists drawn and saved to {fpath}" in engine_log.messages

    # a second call loads the file: same lists, and Python's random is not touched
    random.seed(999)
    state = random.getstate()
    again_train, again_val = dataset.load_or_create_fewshot(cache_dir, 2, 1, train, val)
    assert random.getstate() == state
    assert again_train == first_train and again_val == first_val
    assert f"Few-shot lists read from {fpath}" in engine_log.messages


def test_cache_file_name_per_shots_and_seed(dataset, tmp_path):
    train = make_items({0: 8, 1: 8})
    cache_dir = str(tmp_path)
    dataset.load_or_create_fewshot(cache_dir, 4, -1, train, make_items({0: 4, 1: 4}))
    dataset.load_or_create_fewshot(cache_dir, 1, 3, train, make_items({0: 4, 1: 4}))
    assert sorted(os.listdir(cache_dir)) == ["shot_1-seed_3.pkl", "shot_4-seed_-1.pkl"]


def test_train_only_cache(dataset, tmp_path):
    """ImageNet samples and caches train only."""
    train = make_items({0: 8, 1: 8})
    out_train, out_val = dataset.load_or_create_fewshot(str(tmp_path), 2, 1, train)
    assert out_val is None and len(out_train) == 4
    with open(cache_path(str(tmp_path), 2, 1), "rb") as f:
        assert set(pickle.load(f)) == {"train"}


def test_cache_write_is_atomic(dataset, tmp_path, monkeypatch):
    """A write that fails half way leaves neither a partial cache nor a temporary file, and an
    existing cache stays intact."""
    train = make_items({0: 8, 1: 8})
    val = make_items({0: 4, 1: 4})
    cache_dir = str(tmp_path)
    fpath = cache_path(cache_dir, 2, 1)

    def failing_dump(obj, f, protocol=None):
        f.write(pickle.dumps(obj, protocol=protocol)[:20])
        raise OSError("disk full")

    monkeypatch.setattr(base_dataset.pickle, "dump", failing_dump)
    with pytest.raises(OSError, match="disk full"):
        dataset.load_or_create_fewshot(cache_dir, 2, 1, train, val)
    assert os.listdir(cache_dir) == []

    monkeypatch.undo()
    good_train, good_val = dataset.load_or_create_fewshot(cache_dir, 2, 1, train, val)
    with open(fpath, "rb") as f:
        good_bytes = f.read()
    monkeypatch.setattr(base_dataset.pickle, "dump", failing_dump)
    with pytest.raises(OSError):
        base_dataset.save_pickle({"train": [], "val": []}, fpath)
    with open(fpath, "rb") as f:
        assert f.read() == good_bytes
    assert os.listdir(cache_dir) == ["shot_2-seed_1.pkl"]


def _unimportable_class_pickle():
    module = types.ModuleType("otherlib_cache_module")

    class Datum:  # same name, but from a module that will not exist when the cache is read
        pass

    Datum.__module__ = module.__name__
    Datum.__qualname__ = "Datum"
    module.Datum = Datum
    sys.modules[module.__name__] = module
    try:
        item = Datum()
        item._impath, item._label, item._domain, item._classname = "/x.jpg", 0, 0, "a"
        return pickle.dumps({"train": [item], "val": [item]}, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("corruption", ["empty", "truncated", "garbage", "not_a_dict", "no_val", "unknown_class"])
def test_unreadable_cache_is_regenerated_with_warning(dataset, tmp_path, engine_log, corruption):
    train = make_items({0: 8, 1: 8, 2: 8})
    val = make_items({0: 4, 1: 4, 2: 4})
    cache_dir = str(tmp_path)
    fpath = cache_path(cache_dir, 2, 5)
    valid = pickle.dumps({"train": train[:6], "val": val[:6]}, protocol=pickle.HIGHEST_PROTOCOL)
    content = {
        "empty": b"",
        "truncated": valid[: len(valid) // 2],
        "garbage": b"this is not a pickle file\n",
        "not_a_dict": pickle.dumps([1, 2, 3]),
        "no_val": pickle.dumps({"train": train[:6]}),
        "unknown_class": _unimportable_class_pickle(),
    }[corruption]
    with open(fpath, "wb") as f:
        f.write(content)

    random.seed(5)
    out_train, out_val = dataset.load_or_create_fewshot(cache_dir, 2, 5, train, val)
    random.seed(5)
    expected_train = reference_fewshot(train, 2)
    expected_val = reference_fewshot(val, 2)
    assert out_train == expected_train and out_val == expected_val
    warnings = [r.getMessage() for r in engine_log.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and fpath in warnings[0] and "regenerating" in warnings[0]
    with open(fpath, "rb") as f:
        assert pickle.load(f) == {"train": expected_train, "val": expected_val}


def test_cache_written_by_dassl_loads(dataset, tmp_path):
    """Dassl pickles ``dassl.data.datasets.base_dataset.Datum`` objects with the four private attributes."""
    names = ["dassl", "dassl.data", "dassl.data.datasets", "dassl.data.datasets.base_dataset"]
    modules = {name: types.ModuleType(name) for name in names}

    class DasslDatum:
        def __init__(self, impath="", label=0, domain=0, classname=""):
            self._impath = impath
            self._label = label
            self._domain = domain
            self._classname = classname

    DasslDatum.__module__ = "dassl.data.datasets.base_dataset"
    DasslDatum.__name__ = DasslDatum.__qualname__ = "Datum"
    modules["dassl.data.datasets.base_dataset"].Datum = DasslDatum
    root = str(tmp_path / "data")
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(modules)
    try:
        train = [DasslDatum(f"{root}/c{i % 3}/{i}.jpg", i % 3, 0, f"class {i % 3}") for i in range(6)]
        val = [DasslDatum(f"{root}/c0/v.jpg", 0, 0, "class 0")]
        raw = pickle.dumps({"train": train, "val": val}, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    assert b"dassl.data.datasets.base_dataset" in raw
    assert "dassl" not in sys.modules or saved["dassl"] is not None

    fpath = cache_path(str(tmp_path), 16, 1)
    with open(fpath, "wb") as f:
        f.write(raw)
    source_train = touch_all([Datum(f"{root}/c{i % 3}/{i}.jpg", i % 3, 0, f"class {i % 3}") for i in range(12)])
    source_val = touch_all([Datum(f"{root}/c0/v.jpg", 0, 0, "class 0"), Datum(f"{root}/c1/v.jpg", 1, 0, "class 1")])
    state = random.getstate()
    out_train, out_val = dataset.load_or_create_fewshot(str(tmp_path), 16, 1, source_train, source_val)
    assert random.getstate() == state  # loaded, not re-sampled
    assert all(type(item) is Datum for item in out_train + out_val)
    assert [(d.impath, d.label, d.domain, d.classname) for d in out_train] == [
        (f"{root}/c{i % 3}/{i}.jpg", i % 3, 0, f"class {i % 3}") for i in range(6)]
    assert out_val == [Datum(f"{root}/c0/v.jpg", 0, 0, "class 0")]
