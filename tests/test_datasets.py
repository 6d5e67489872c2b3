"""The 15 dataset readers on miniature copies of their real layouts (tests/miniature_datasets.py): class
names, labels, split sizes, few-shot picks against the documented Dassl algorithm, base/new classes,
split generation, caches, error messages, and CoOp runs of train.py."""
import json
import logging
import math
import os
import random
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import read_results, run_train
from miniature_datasets import (
    CLIP_CLASSNAMES,
    IMAGENET_META,
    IMAGENET_VAL_PER_CLASS,
    WNID_TO_NAME,
    counts,
    write_all,
    write_miniature,
)

from promptlearn.config import get_cfg_default
from promptlearn.data.datasets import build_dataset
from promptlearn.data.datasets.image_files import find_missing_files
from promptlearn.errors import UserError
from promptlearn.utils.tools import set_random_seed

CLASSNAMES = {
    "ImageNet": ["tench", "great white shark", "duck", "baluster / handrail", "hook", "toilet paper"],
    "Caltech101": ["face", "leopard", "motorbike", "accordion", "airplane", "anchor"],
    "OxfordPets": ["abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "bengal"],
    "StanfordCars": ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Acura TL Sedan", "2008 Acura TL Type-S",
                     "2012 Acura TSX Sedan", "2001 Acura Integra Type R"],
    "OxfordFlowers": ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
                      "tiger lily"],
    "Food101": ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad"],
    "FGVCAircraft": ["707-320", "A300B4", "BAE 146-200", "Cessna 172", "F-16A/B", "F/A-18"],
    "SUN397": ["abbey", "airplane_cabin", "outdoor apartment_building", "indoor apse", "badlands", "shop bakery"],
    "DescribableTextures": ["banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed"],
    "EuroSAT": ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
                "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake"],
    "UCF101": ["Apply_Eye_Makeup", "Archery", "Baby_Crawling", "Handstand_Pushups", "Playing_Daf", "Yo_Yo"],
    "ImageNetSketch": ["goldfish", "tiger shark", "sea lion", "academic gown", "scabbard", "corn cob"],
}
SPLIT_FILES = {
    "Caltech101": ("caltech-101", "split_zhou_Caltech101.json", "101_ObjectCategories"),
    "OxfordPets": ("oxford_pets", "split_zhou_OxfordPets.json", "images"),
    "StanfordCars": ("stanford_cars", "split_zhou_StanfordCars.json", ""),
    "OxfordFlowers": ("oxford_flowers", "split_zhou_OxfordFlowers.json", "jpg"),
    "Food101": ("food-101", "split_zhou_Food101.json", "images"),
    "SUN397": ("sun397", "split_zhou_SUN397.json", "SUN397"),
    "DescribableTextures": ("dtd", "split_zhou_DescribableTextures.json", "images"),
    "EuroSAT": ("eurosat", "split_zhou_EuroSAT.json", "2750"),
    "UCF101": ("ucf101", "split_zhou_UCF101.json", "UCF-101-midframes"),
}
BASE_TO_NEW = [*SPLIT_FILES, "FGVCAircraft"]  # the ten with train/val/test lists; ImageNet is the eleventh
# generated splits: trainval annotations split 80/20 per class, or class folders split 50/20/30
TRAINVAL_GENERATED = ("OxfordPets", "StanfordCars", "SUN397", "UCF101")


@pytest.fixture(autouse=True)
def _propagating_loggers(monkeypatch):
    """Reader and engine records reach caplog even after a train.py-style logger setup in this process."""
    for name in ("datasets", "promptlearn"):
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory):
    """All 15 miniatures (read by the tests that leave the tree as it is)."""
    return write_all(tmp_path_factory.mktemp("miniature"))


@pytest.fixture
def fresh(tmp_path):
    """Write the named miniatures into a new root for a test that changes files; returns the root."""

    def _write(*names):
        for name in names:
            write_miniature(tmp_path, name)
        return str(tmp_path)

    return _write


def build(root, name, shots=-1, seed=1, subsample="all"):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    set_random_seed(seed)
    return build_dataset(cfg)


def as_tuples(items):
    return [(item.impath, item.label, item.classname) for item in items]


def per_class(items):
    return dict(Counter(item.label for item in items))


def expected_sizes(name):
    n = len(CLASSNAMES[name])
    return tuple(sum(counts(c)[part] for c in range(n)) for part in range(3))


# ------------------------------------------------------------------------------ classes, labels, split sizes

@pytest.mark.parametrize("name", list(CLASSNAMES))
def test_class_names_and_labels(mini_root, name):
    dataset = build(mini_root, name)
    names = CLASSNAMES[name]
    assert dataset.classnames == names
    assert dataset.num_classes == len(names)
    for items in [items for items in (dataset.train_x, dataset.val, dataset.test) if items is not None]:
        assert sorted({item.label for item in items}) == list(range(len(names)))
        assert all(names[item.label] == item.classname for item in items)
        assert all(os.path.isfile(item.impath) for item in items)


@pytest.mark.parametrize("name", BASE_TO_NEW)
def test_split_sizes_per_class(mini_root, name):
    dataset = build(mini_root, name)
    assert (len(dataset.train_x), len(dataset.val), len(dataset.test)) == expected_sizes(name)
    for part, items in enumerate((dataset.train_x, dataset.val, dataset.test)):
        assert per_class(items) == {c: counts(c)[part] for c in range(len(CLASSNAMES[name]))}


def test_imagenet_val_is_the_test_set(mini_root):
    dataset = build(mini_root, "ImageNet")
    assert per_class(dataset.train_x) == {c: counts(c)[0] for c in range(6)}
    assert len(dataset.test) == 6 * IMAGENET_VAL_PER_CLASS
    assert dataset.val is dataset.test
    assert all(f"{os.sep}images{os.sep}val{os.sep}" in item.impath for item in dataset.test)


# --------------------------------------------------------------------------------------------- few-shot

@pytest.mark.parametrize("shots", [1, 2, 4, 8, 16])
def test_fewshot_counts(mini_root, shots):
    dataset = build(mini_root, "Caltech101", shots=shots)
    assert per_class(dataset.train_x) == {c: min(shots, counts(c)[0]) for c in range(6)}
    assert per_class(dataset.val) == {c: min(shots, 4, counts(c)[1]) for c in range(6)}
    assert len(dataset.test) == expected_sizes("Caltech101")[2]
    imagenet = build(mini_root, "ImageNet", shots=shots)
    assert per_class(imagenet.train_x) == {c: min(shots, counts(c)[0]) for c in range(6)}
    assert len(imagenet.test) == len(imagenet.val) == 6 * IMAGENET_VAL_PER_CLASS


@pytest.mark.parametrize("name", BASE_TO_NEW)
def test_fewshot_counts_every_dataset(mini_root, name):
    dataset = build(mini_root, name, shots=8, seed=3)
    n = len(CLASSNAMES[name])
    assert per_class(dataset.train_x) == {c: min(8, counts(c)[0]) for c in range(n)}
    assert per_class(dataset.val) == {c: min(4, counts(c)[1]) for c in range(n)}
    assert os.path.isfile(os.path.join(dataset.dataset_dir, "split_fewshot", "shot_8-seed_3.pkl"))


def full_lists(root, name):
    """The full lists read directly from the miniature's files (not through the readers)."""
    if name in SPLIT_FILES:
        folder, split_file, image_folder = SPLIT_FILES[name]
        dataset_dir = os.path.join(root, folder)
        with open(os.path.join(dataset_dir, split_file)) as f:
            split = json.load(f)
        image_dir = os.path.join(dataset_dir, image_folder) if image_folder else dataset_dir
        return {part: [(os.path.join(image_dir, p), label, c) for p, label, c in split[part]] for part in split}
    if name == "FGVCAircraft":
        dataset_dir = os.path.join(root, "fgvc_aircraft")
        with open(os.path.join(dataset_dir, "variants.txt")) as f:
            variants = f.read().splitlines()
        lists = {}
        for part in ("train", "val", "test"):
            with open(os.path.join(dataset_dir, f"images_variant_{part}.txt")) as f:
                pairs = [line.split(" ", 1) for line in f.read().splitlines()]
            lists[part] = [(os.path.join(dataset_dir, "images", i + ".jpg"), variants.index(v), v) for i, v in pairs]
        return lists
    assert name == "ImageNet"
    train_dir = os.path.join(root, "imagenet", "images", "train")
    lists = {"train": []}
    for label, wnid in enumerate(sorted(os.listdir(train_dir))):
        for imname in sorted(os.listdir(os.path.join(train_dir, wnid))):
            lists["train"].append((os.path.join(train_dir, wnid, imname), label, WNID_TO_NAME[wnid]))
    return lists


def dassl_fewshot(items, num_shots):
    """Dassl's documented algorithm: group by label in order of first appearance; from each class take
    ``random.sample(items, K)`` if it has at least K items, else all of them."""
    groups = {}
    for item in items:
        groups.setdefault(item[1], []).append(item)
    picked = []
    for group in groups.values():
        picked.extend(random.sample(group, num_shots) if len(group) >= num_shots else group)
    return picked


@pytest.mark.parametrize("name,seed,shots", [
    ("Caltech101", 1, 16), ("OxfordFlowers", 1, 4), ("StanfordCars", 2, 2), ("SUN397", 3, 8), ("EuroSAT", 1, 1),
    ("UCF101", 2, 16), ("FGVCAircraft", 1, 4), ("ImageNet", 2, 4),
])
def test_fewshot_subset_equals_dassl_algorithm(fresh, name, seed, shots):
    root = fresh(name)
    dataset = build(root, name, shots=shots, seed=seed)
    lists = full_lists(root, name)
    random.seed(seed)
    expected_train = dassl_fewshot(lists["train"], shots)
    assert as_tuples(dataset.train_x) == expected_train
    if name != "ImageNet":
        assert as_tuples(dataset.val) == dassl_fewshot(lists["val"], min(shots, 4))
    # a second run loads the cache: the same subset, and Python's generator is left untouched
    again = build(root, name, shots=shots, seed=seed)
    assert as_tuples(again.train_x) == expected_train
    state_after = random.random()
    random.seed(seed)
    assert state_after == random.random()


def test_fewshot_classes_follow_first_appearance_order(mini_root):
    """Flowers' split lists its classes in annotation order, not label order; sampling keeps that order."""
    dataset = build(mini_root, "OxfordFlowers", shots=2)
    labels = list(dict.fromkeys(item.label for item in dataset.train_x))
    assert labels == [3, 0, 5, 1, 4, 2]


# --------------------------------------------------------------------------------------------- base / new

@pytest.mark.parametrize("name", ["Caltech101", "DescribableTextures", "EuroSAT", "ImageNet", "SUN397"])
def test_base_and_new_halves(mini_root, name):
    names = CLASSNAMES[name]
    m = math.ceil(len(names) / 2)
    full = build(mini_root, name, shots=4)
    base = build(mini_root, name, shots=4, subsample="base")
    new = build(mini_root, name, shots=4, subsample="new")
    assert base.classnames == names[:m]
    assert new.classnames == names[m:]
    for subset, offset in ((base, 0), (new, m)):
        for kept, source in ((subset.train_x, full.train_x), (subset.val, full.val), (subset.test, full.test)):
            in_half = [(i.impath, i.label - offset, i.classname) for i in source
                       if 0 <= i.label - offset < len(subset.classnames)]
            assert as_tuples(kept) == in_half


def test_odd_class_count_gives_base_one_more(mini_root):
    assert build(mini_root, "DescribableTextures", subsample="base").num_classes == 4
    assert build(mini_root, "DescribableTextures", subsample="new").num_classes == 3


def test_eurosat_base_and_new_names(mini_root):
    assert build(mini_root, "EuroSAT", subsample="base").classnames == [
        "Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings"]
    assert build(mini_root, "EuroSAT", subsample="new").classnames == [
        "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake"]


# ----------------------------------------------------------------------------------------- special cases

def test_stanford_cars_paths_are_relative_to_the_dataset_folder(mini_root):
    dataset = build(mini_root, "StanfordCars")
    train_dir = os.path.join(dataset.dataset_dir, "cars_train") + os.sep
    test_dir = os.path.join(dataset.dataset_dir, "cars_test") + os.sep
    assert all(item.impath.startswith(train_dir) for item in dataset.train_x + dataset.val)
    assert all(item.impath.startswith(test_dir) for item in dataset.test)


def test_ucf101_frames_live_in_renamed_action_folders(mini_root):
    dataset = build(mini_root, "UCF101")
    handstand = [item.impath for item in dataset.train_x if item.classname == "Handstand_Pushups"]
    assert handstand and all(os.sep.join(p.split(os.sep)[-2:]).startswith("Handstand_Pushups/v_HandStandPushups_")
                             for p in handstand)


def test_fgvc_lists_are_read_on_every_run(fresh):
    root = fresh("FGVCAircraft")
    assert len(build(root, "FGVCAircraft").train_x) == expected_sizes("FGVCAircraft")[0]
    path = os.path.join(root, "fgvc_aircraft", "images_variant_train.txt")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(lines[1:]) + "\n")
    assert len(build(root, "FGVCAircraft").train_x) == expected_sizes("FGVCAircraft")[0] - 1


@pytest.mark.parametrize("name,folder,wnid_key,first_name", [
    ("ImageNetA", "imagenet-a", "imagenet_a_wnids", "stingray"),
    ("ImageNetR", "imagenet-r", "imagenet_r_wnids", "goldfish"),
])
def test_imagenet_a_and_r_are_200_way(mini_root, name, folder, wnid_key, first_name):
    dataset = build(mini_root, name, shots=16, subsample="base")  # both ignored by the test sets
    wnids = sorted(IMAGENET_META[wnid_key])
    assert dataset.num_classes == 200
    assert dataset.classnames == [WNID_TO_NAME[wnid] for wnid in wnids]
    assert dataset.classnames[0] == first_name
    assert dataset.train_x is dataset.test and dataset.val is None
    assert len(dataset.test) == 300
    for item in dataset.test:
        assert os.path.basename(os.path.dirname(item.impath)) == wnids[item.label]
    assert not any("README" in item.impath for item in dataset.test)


def test_imagenetv2_labels_are_the_integer_folders(mini_root):
    dataset = build(mini_root, "ImageNetV2", shots=4)
    assert dataset.num_classes == 1000
    assert dataset.classnames == CLIP_CLASSNAMES
    assert dataset.train_x is dataset.test and dataset.val is None
    assert len(dataset.test) == 1003
    assert all(int(os.path.basename(os.path.dirname(item.impath))) == item.label for item in dataset.test)


def test_imagenet_sketch_labels_index_the_folders_present(mini_root):
    dataset = build(mini_root, "ImageNetSketch")
    folders = sorted(os.listdir(os.path.join(mini_root, "imagenet-sketch", "images")))
    assert all(os.path.basename(os.path.dirname(item.impath)) == folders[item.label] for item in dataset.test)


# --------------------------------------------------------------------------------------- split generation

@pytest.mark.parametrize("name", list(SPLIT_FILES))
def test_split_is_generated_and_saved_when_absent(fresh, caplog, name):
    root = fresh(name)
    folder, split_file, _ = SPLIT_FILES[name]
    split_path = os.path.join(root, folder, split_file)
    os.remove(split_path)
    with caplog.at_level(logging.WARNING):
        dataset = build(root, name)
    assert "not found: generating a new split" in caplog.text
    assert os.path.isfile(split_path)
    assert dataset.classnames == CLASSNAMES[name]
    for c in range(len(CLASSNAMES[name])):
        n_train, n_val, n_test = counts(c)
        if name in TRAINVAL_GENERATED:
            n_trainval = n_train + n_val
            sizes = (n_trainval - round(0.2 * n_trainval), round(0.2 * n_trainval), n_test)
        else:
            n = n_train + n_val + n_test
            sizes = (round(0.5 * n), round(0.2 * n), n - round(0.5 * n) - round(0.2 * n))
        got = tuple(per_class(items).get(c, 0) for items in (dataset.train_x, dataset.val, dataset.test))
        assert got == sizes, f"class {c}"
    generated = {part: as_tuples(items) for part, items in
                 (("train", dataset.train_x), ("val", dataset.val), ("test", dataset.test))}
    assert full_lists(root, name) == generated  # what was saved is what was used
    reread = build(root, name)
    assert as_tuples(reread.train_x) == generated["train"] and as_tuples(reread.test) == generated["test"]


def test_caltech101_generation_sorts_case_sensitively_and_drops_ignored_folders(fresh):
    first = fresh("Caltech101")
    second = os.path.join(first, "copy")
    write_miniature(second, "Caltech101")
    saved = []
    for root in (first, second):
        split_path = os.path.join(root, "caltech-101", "split_zhou_Caltech101.json")
        os.remove(split_path)
        dataset = build(root, "Caltech101", seed=5)
        assert dataset.classnames == ["face", "leopard", "motorbike", "accordion", "airplane", "anchor"]
        folders = {os.path.basename(os.path.dirname(i.impath)) for i in dataset.train_x + dataset.val + dataset.test}
        assert folders == {"Faces", "Leopards", "Motorbikes", "accordion", "airplanes", "anchor"}
        with open(split_path) as f:
            saved.append(json.load(f))
    assert saved[0] == saved[1]  # the same seed generates the same split


# ------------------------------------------------------------------------------------------------ caches

def test_fewshot_cache_of_a_moved_root_is_regenerated(fresh, tmp_path_factory, caplog):
    root = fresh("Caltech101")
    before = build(root, "Caltech101", shots=4, seed=2)
    moved = str(tmp_path_factory.mktemp("moved") / "data")
    shutil.move(root, moved)
    with caplog.at_level(logging.WARNING):
        after = build(moved, "Caltech101", shots=4, seed=2)
    assert "does not exist" in caplog.text and "regenerating" in caplog.text
    assert all(item.impath.startswith(moved + os.sep) for item in after.train_x + after.val)
    relative = [(os.path.relpath(i.impath, root), i.label) for i in before.train_x]
    assert [(os.path.relpath(i.impath, moved), i.label) for i in after.train_x] == relative


def test_fewshot_cache_not_matching_the_split_is_regenerated(fresh, caplog):
    root = fresh("Food101")
    cached = build(root, "Food101", shots=2, seed=1)
    split_path = os.path.join(root, "food-101", "split_zhou_Food101.json")
    with open(split_path) as f:
        split = json.load(f)
    moved_item = os.path.relpath(cached.train_x[0].impath, os.path.join(root, "food-101", "images"))
    entry = next(e for e in split["train"] if e[0] == moved_item)
    split["train"].remove(entry)
    split["test"].append(entry)
    with open(split_path, "w") as f:
        json.dump(split, f)
    with caplog.at_level(logging.WARNING):
        dataset = build(root, "Food101", shots=2, seed=1)
    assert "not in the current split" in caplog.text
    assert cached.train_x[0].impath not in {item.impath for item in dataset.train_x}


def test_imagenet_preprocessed_file_is_reused_and_rebuilt_after_a_move(fresh, tmp_path_factory, caplog):
    root = fresh("ImageNet")
    first = build(root, "ImageNet")
    pkl = os.path.join(root, "imagenet", "preprocessed.pkl")
    assert os.path.isfile(pkl)
    with caplog.at_level(logging.INFO):
        assert as_tuples(build(root, "ImageNet").test) == as_tuples(first.test)
    assert "Loading preprocessed data" in caplog.text
    moved = str(tmp_path_factory.mktemp("moved") / "data")
    shutil.move(root, moved)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        after = build(moved, "ImageNet")
    assert "was the data root moved?" in caplog.text
    assert all(item.impath.startswith(moved + os.sep) for item in after.train_x + after.test)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build(moved, "ImageNet")
    assert caplog.text == ""  # the rebuilt file holds the new paths


def test_image_check_lists_each_folder_once(tmp_path, monkeypatch):
    """What keeps the check fast for ImageNet: one directory read per folder, not one stat per image."""
    paths = []
    for folder in ("a", "b", "c"):
        (tmp_path / folder).mkdir()
        for name in ("1.jpg", "2.jpg"):
            (tmp_path / folder / name).write_bytes(b"x")
        paths += [str(tmp_path / folder / name) for name in ("1.jpg", "2.jpg", "3.jpg")]
    paths = paths * 1000 + [str(tmp_path / "gone" / "1.jpg")]
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or real_listdir(path))
    missing = find_missing_files(paths)
    assert sorted(listed) == sorted(str(tmp_path / folder) for folder in ("a", "b", "c", "gone"))
    assert missing == [str(tmp_path / folder / "3.jpg") for folder in ("a", "b", "c")] * 1000 + [paths[-1]]


# ------------------------------------------------------------------------------------------------ errors

def error_of(root, name, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        build(root, name, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_error_missing_root(tmp_path):
    message = error_of(tmp_path / "nowhere", "Caltech101")
    assert str(tmp_path / "nowhere") in message and "DATASETS.md#caltech101" in message


def test_error_empty_root():
    assert "--root" in error_of("", "OxfordPets")


def test_error_missing_dataset_folder(tmp_path):
    message = error_of(tmp_path, "SUN397")
    assert os.path.join(str(tmp_path), "sun397") in message and "DATASETS.md#sun397" in message


def test_error_missing_split_file_that_cannot_be_generated(fresh):
    root = fresh("OxfordPets")
    os.remove(os.path.join(root, "oxford_pets", "split_zhou_OxfordPets.json"))
    os.remove(os.path.join(root, "oxford_pets", "annotations", "trainval.txt"))
    message = error_of(root, "OxfordPets")
    assert os.path.join(root, "oxford_pets", "split_zhou_OxfordPets.json") in message
    assert os.path.join(root, "oxford_pets", "annotations", "trainval.txt") in message
    assert "--splits-only" in message and "DATASETS.md#oxfordpets" in message


@pytest.mark.parametrize("name,relpath", [
    ("ImageNet", "imagenet/classnames.txt"),
    ("FGVCAircraft", "fgvc_aircraft/variants.txt"),
    ("ImageNetA", "imagenet-adversarial/classnames.txt"),
    ("EuroSAT", "eurosat/2750"),
    ("StanfordCars", "stanford_cars/cars_test"),
])
def test_error_missing_piece_names_its_path(fresh, name, relpath):
    root = fresh(name)
    path = os.path.join(root, relpath)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    message = error_of(root, name)
    assert path in message and f"DATASETS.md#{name.lower()}" in message


def test_error_missing_image_is_named(fresh):
    root = fresh("UCF101")
    path = os.path.join(root, "ucf101", "UCF-101-midframes", "Archery", "v_Archery_g09_c01.jpg")
    os.remove(path)
    message = error_of(root, "UCF101")
    assert f"the first being {path}" in message and "DATASETS.md#ucf101" in message
    assert "no image at all" not in message


def test_error_class_with_all_images_missing_is_named(fresh):
    root = fresh("Caltech101")
    shutil.rmtree(os.path.join(root, "caltech-101", "101_ObjectCategories", "accordion"))
    message = error_of(root, "Caltech101")
    assert 'no image at all was found for class "accordion"' in message


def test_error_empty_imagenet_class_folder_is_named(fresh):
    root = fresh("ImageNet")
    folder = os.path.join(root, "imagenet", "images", "train", "n01847000")
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    message = error_of(root, "ImageNet")
    assert '"duck"' in message and folder in message


def test_error_imagenetv2_missing_integer_folder(fresh):
    root = fresh("ImageNetV2")
    folder = os.path.join(root, "imagenetv2", "imagenetv2-matched-frequency-format-val", "17")
    shutil.rmtree(folder)
    message = error_of(root, "ImageNetV2")
    assert folder in message and f'"{CLIP_CLASSNAMES[17]}"' in message


def test_error_unknown_variant_in_fgvc_list(fresh):
    root = fresh("FGVCAircraft")
    with open(os.path.join(root, "fgvc_aircraft", "images_variant_val.txt"), "a") as f:
        f.write("0999999 Concorde\n")
    assert '"Concorde"' in error_of(root, "FGVCAircraft")


# ------------------------------------------------------------------------------------------- train.py runs

TRAIN_RUNS = {
    "Caltech101": (["--dataset-config-file", "configs/datasets/caltech101.yaml", "DATASET.NUM_SHOTS", "4",
                    "DATASET.SUBSAMPLE_CLASSES", "base"], 3, sum(counts(c)[2] for c in range(3))),
    "ImageNet": (["--dataset-config-file", "configs/datasets/imagenet.yaml", "DATASET.NUM_SHOTS", "2"],
                 6, 6 * IMAGENET_VAL_PER_CLASS),
    # 200 prompts per step: large batches keep the run to a few steps
    "ImageNetA": (["--dataset-config-file", "configs/datasets/imagenet_a.yaml", "DATALOADER.TRAIN_X.BATCH_SIZE", "150",
                   "DATALOADER.TEST.BATCH_SIZE", "300"], 200, 300),
}


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    """CoOp with the tiny backbone for one epoch on three miniatures, plus one run with a missing data
    root, run side by side (each subprocess spends most of its time importing)."""
    root = tmp_path_factory.mktemp("train_data")
    for name in TRAIN_RUNS:
        write_miniature(root, name)
    out = tmp_path_factory.mktemp("train_out")
    common = ["--trainer", "CoOp", "--config-file", "configs/trainers/CoOp/tiny_vit_demo.yaml", "--seed", "1"]
    jobs = {name: ["--root", root, "--output-dir", out / name, *common, *args[0], "OPTIM.MAX_EPOCH", "1"]
            for name, args in TRAIN_RUNS.items()}
    jobs["missing_root"] = ["--root", root / "nowhere", "--output-dir", out / "missing_root", *common,
                            "--dataset-config-file", "configs/datasets/caltech101.yaml"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(jobs, pool.map(lambda args: run_train(args, check=False), jobs.values())))
    return procs, out


@pytest.mark.parametrize("name", list(TRAIN_RUNS))
def test_train_py_runs_coop_for_one_epoch(train_runs, name):
    procs, out = train_runs
    proc = procs[name]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _, num_classes, num_test = TRAIN_RUNS[name]
    results = read_results(out / name)
    assert results["run"]["dataset"] == name
    assert results["run"]["num_classes"] == num_classes
    assert results["test"]["total"] == num_test
    with open(out / name / "log.txt") as f:
        log = f.read()
    if name == "ImageNet":
        assert "Saved preprocessed data to" in log  # reader records reach the run's log


def test_train_py_reports_a_missing_root_in_one_line(train_runs):
    procs, _ = train_runs
    proc = procs["missing_root"]
    assert proc.returncode == 1
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "nowhere" in error_lines[0] and "DATASETS.md#caltech101" in error_lines[0]
