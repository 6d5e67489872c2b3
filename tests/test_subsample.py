"""Base/new class subsampling (CoOp's ``subsample_classes``): ceil(n/2) base labels taken from the first
list, every list filtered and relabeled 0..m-1, "all" unchanged, and a bad value rejected."""
import math

import pytest

from promptlearn.config import get_cfg_default
from promptlearn.data.datasets import build_dataset
from promptlearn.data.datasets.base_dataset import DatasetBase, Datum
from promptlearn.errors import UserError


def items_for(labels, tag):
    return [Datum(impath=f"/{tag}/{label}_{i}.jpg", label=label, domain=label % 2, classname=f"name{label}")
            for i, label in enumerate(labels)]


@pytest.mark.parametrize("n_labels", [1, 2, 5, 6, 7, 10])
def test_base_and_new_partition_the_labels(n_labels):
    labels = [3 * k + 1 for k in range(n_labels)]  # sparse labels: 1, 4, 7, ...
    train = items_for(labels * 2, "train")
    m = math.ceil(n_labels / 2)
    base_train, = DatasetBase.subsample_classes(train, subsample="base")
    new_train, = DatasetBase.subsample_classes(train, subsample="new")
    assert sorted({d.classname for d in base_train}) == sorted(f"name{y}" for y in labels[:m])
    assert sorted({d.classname for d in new_train}) == sorted(f"name{y}" for y in labels[m:])
    assert len({d.label for d in base_train}) == m
    assert len({d.label for d in new_train}) == n_labels - m


def test_odd_count_gives_base_one_more_class():
    train = items_for([0, 1, 2, 3, 4], "train")
    base, = DatasetBase.subsample_classes(train, subsample="base")
    new, = DatasetBase.subsample_classes(train, subsample="new")
    assert [d.label for d in base] == [0, 1, 2]
    assert [d.classname for d in new] == ["name3", "name4"]
    assert [d.label for d in new] == [0, 1]


def test_labels_come_from_first_list_and_others_are_filtered_and_relabeled():
    train = items_for([9, 2, 5, 2, 14, 9], "train")  # labels present: 2, 5, 9, 14 -> base 2, 5; new 9, 14
    val = items_for([2, 3, 14, 5, 20], "val")  # 3 and 20 are not in train: never kept
    test = items_for([14, 9, 5, 2, 3, 20, 2], "test")
    base = DatasetBase.subsample_classes(train, val, test, subsample="base")
    new = DatasetBase.subsample_classes(train, val, test, subsample="new")
    relabel_base = {2: 0, 5: 1}
    relabel_new = {9: 0, 14: 1}
    for outputs, relabel in [(base, relabel_base), (new, relabel_new)]:
        assert len(outputs) == 3
        for original, output in zip((train, val, test), outputs):
            kept = [d for d in original if d.label in relabel]
            assert [(d.impath, d.classname, d.domain) for d in output] == [(d.impath, d.classname, d.domain)
                                                                          for d in kept]
            assert [d.label for d in output] == [relabel[d.label] for d in kept]
            assert all(isinstance(d, Datum) for d in output)
    # the inputs are left as they were
    assert [d.label for d in train] == [9, 2, 5, 2, 14, 9]


def test_all_returns_inputs_unchanged():
    train = items_for([4, 1, 7], "train")
    test = items_for([1, 7, 9], "test")
    out = DatasetBase.subsample_classes(train, test, subsample="all")
    assert out[0] is train and out[1] is test


@pytest.mark.parametrize("bad", ["Base", "half", "", "novel"])
def test_bad_value_is_a_user_error(bad):
    with pytest.raises(UserError, match="SUBSAMPLE_CLASSES"):
        DatasetBase.subsample_classes(items_for([0, 1], "train"), subsample=bad)


def demo_cfg(root, subsample):
    cfg = get_cfg_default()
    cfg.DATASET.NAME = "DemoShapes"
    cfg.DATASET.ROOT = root
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    return cfg


def test_reader_applies_subsampling_to_every_split(demo_root):
    full = build_dataset(demo_cfg(demo_root, "all"))
    base = build_dataset(demo_cfg(demo_root, "base"))
    new = build_dataset(demo_cfg(demo_root, "new"))
    assert full.num_classes == 10
    assert base.classnames == full.classnames[:5] and new.classnames == full.classnames[5:]
    assert base.num_classes == new.num_classes == 5
    assert new.lab2cname == {i: name for i, name in enumerate(full.classnames[5:])}
    for split in ("train_x", "val", "test"):
        items = getattr(new, split)
        assert {d.label for d in items} == set(range(5))
        assert len(items) == len(getattr(full, split)) // 2
        assert all(new.lab2cname[d.label] == d.classname for d in items)
