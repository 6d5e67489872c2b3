"""Miniature copies of the 15 datasets in their real on-disk layouts, for the reader and tool tests.

Each writer reproduces its dataset's folder tree, file-naming pattern, split file (CoOp's JSON schema),
class lists and annotation files (``.mat`` files through scipy) with a handful of tiny JPEGs per class.
The class names are real ones; only the number of classes and images is small. ImageNet's
``classnames.txt`` has all 1000 lines (from ``tests/data/imagenet_meta.json``); ImageNetV2 has all 1000
integer folders and ImageNet-A/-R all 200 wnid folders, one or two images each.

    write_miniature(root, "Caltech101")   # -> <root>/caltech-101
    write_all(root)
"""
import io
import json
import os
import string

import numpy as np
from PIL import Image
from scipy.io import savemat

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "imagenet_meta.json")) as _f:
    IMAGENET_META = json.load(_f)
IMAGENET_WNIDS = IMAGENET_META["imagenet_wnids"]
CLIP_CLASSNAMES = IMAGENET_META["clip_classnames"]
WNID_TO_NAME = dict(zip(IMAGENET_WNIDS, CLIP_CLASSNAMES))

# (train, val, test) images per class in the published split files, cycling over a dataset's classes.
# One class has more than 16 training images, so every few-shot size from 1 to 16 samples from it.
COUNTS = ((17, 5, 3), (9, 3, 2), (5, 1, 2), (3, 2, 1), (2, 1, 2), (4, 2, 2))

# The order in which classes first appear in StanfordCars' and OxfordFlowers' annotation files (and so in
# their split files): not the label order, as in the real files.
FIRST_APPEARANCE = (3, 0, 5, 1, 4, 2)

_JPEG_CACHE = {}


def counts(label: int):
    return COUNTS[label % len(COUNTS)]


def _jpeg(index: int) -> bytes:
    """A tiny JPEG (8x8 to 32x32) of a solid colour; a few variants are encoded once and reused."""
    key = index % 12
    if key not in _JPEG_CACHE:
        size = 8 * (1 + key % 4)
        colour = ((key * 67) % 256, (key * 131 + 40) % 256, (key * 29 + 90) % 256)
        buffer = io.BytesIO()
        Image.new("RGB", (size, size), colour).save(buffer, format="JPEG")
        _JPEG_CACHE[key] = buffer.getvalue()
    return _JPEG_CACHE[key]


def write_image(path: str, index: int = 0) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(_jpeg(index))


def write_text(path: str, lines, newline: str = "\n") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("".join(line + newline for line in lines))


def write_split(path: str, split: dict) -> None:
    """CoOp's split-file format: 4-space indent, lists of [relative path, label, classname]."""
    with open(path, "w") as f:
        json.dump(split, f, indent=4, separators=(",", ": "))


def _split_of(entries_by_class, order):
    """The published split: per class (in ``order``), the first images to train, the next to val, the rest
    to test. ``entries_by_class[c]`` is that class's list of [relpath, label, classname]."""
    split = {"train": [], "val": [], "test": []}
    for c in order:
        n_train, n_val, _ = counts(c)
        entries = entries_by_class[c]
        split["train"].extend(entries[:n_train])
        split["val"].extend(entries[n_train:n_train + n_val])
        split["test"].extend(entries[n_train + n_val:])
    return split


def _class_folder_dataset(dataset_dir: str, image_folder: str, classes, imname, split_file: str):
    """Images ``<image_folder>/<folder>/<imname(folder, k)>`` and a split file whose labels follow the
    order of ``classes`` (``(folder, classname)`` pairs, already in label order)."""
    entries = []
    for label, (folder, classname) in enumerate(classes):
        n_images = sum(counts(label))
        relpaths = [f"{folder}/{imname(folder, k)}" for k in range(1, n_images + 1)]
        for k, relpath in enumerate(relpaths):
            write_image(os.path.join(dataset_dir, image_folder, relpath), label + k)
        entries.append([[relpath, label, classname] for relpath in relpaths])
    write_split(os.path.join(dataset_dir, split_file), _split_of(entries, range(len(classes))))


# ----------------------------------------------------------------------------------------------- datasets

CALTECH_FOLDERS = ("BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion",
                   "airplanes", "anchor")


def write_caltech101(root: str) -> str:
    dataset_dir = os.path.join(root, "caltech-101")
    renames = {"Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike", "airplanes": "airplane"}
    ignored = ("BACKGROUND_Google", "Faces_easy")
    classes = [(folder, renames.get(folder, folder)) for folder in sorted(CALTECH_FOLDERS) if folder not in ignored]
    _class_folder_dataset(dataset_dir, "101_ObjectCategories", classes, lambda _, k: f"image_{k:04d}.jpg",
                          "split_zhou_Caltech101.json")
    for folder in ignored:
        for k in range(1, 6):
            write_image(os.path.join(dataset_dir, "101_ObjectCategories", folder, f"image_{k:04d}.jpg"), k)
    return dataset_dir


# (image-name prefix, class id, species 1=cat 2=dog, breed id within the species)
PETS_BREEDS = (("Abyssinian", 1, 1, 1), ("american_bulldog", 2, 2, 1), ("american_pit_bull_terrier", 3, 2, 2),
               ("basset_hound", 4, 2, 3), ("beagle", 5, 2, 4), ("Bengal", 6, 1, 2))


def write_oxford_pets(root: str) -> str:
    dataset_dir = os.path.join(root, "oxford_pets")
    trainval_lines, test_lines, entries = [], [], []
    for label, (prefix, class_id, species, breed_id) in enumerate(PETS_BREEDS):
        n_train, n_val, n_test = counts(label)
        names = [f"{prefix}_{100 + 3 * k}" for k in range(n_train + n_val + n_test)]
        for k, name in enumerate(names):
            write_image(os.path.join(dataset_dir, "images", name + ".jpg"), label + k)
            line = f"{name} {class_id} {species} {breed_id}"
            (trainval_lines if k < n_train + n_val else test_lines).append(line)
        entries.append([[name + ".jpg", label, prefix.lower()] for name in names])
    write_text(os.path.join(dataset_dir, "annotations", "trainval.txt"), trainval_lines)
    write_text(os.path.join(dataset_dir, "annotations", "test.txt"), test_lines)
    write_split(os.path.join(dataset_dir, "split_zhou_OxfordPets.json"), _split_of(entries, range(len(entries))))
    return dataset_dir


CARS_CLASS_NAMES = ("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012",
                    "Acura TL Type-S 2008", "Acura TSX Sedan 2012", "Acura Integra Type R 2001")


def _interleaved(per_class):
    """Class indices image by image: round-robin over FIRST_APPEARANCE until each class has its count."""
    remaining = dict(enumerate(per_class))
    order = []
    while any(remaining.values()):
        for c in FIRST_APPEARANCE:
            if remaining[c]:
                order.append(c)
                remaining[c] -= 1
    return order


def _cars_annotations(classes, fnames):
    records = np.zeros((1, len(fnames)), dtype=[(field, "O") for field in
                                                ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")])
    for i, (c, fname) in enumerate(zip(classes, fnames)):
        for field, value in (("bbox_x1", 1), ("bbox_y1", 1), ("bbox_x2", 7), ("bbox_y2", 7)):
            records[0, i][field] = np.array([[value]], dtype=np.uint16)
        records[0, i]["class"] = np.array([[c + 1]], dtype=np.uint8)
        records[0, i]["fname"] = np.array([fname])
    return records


def write_stanford_cars(root: str) -> str:
    dataset_dir = os.path.join(root, "stanford_cars")
    os.makedirs(os.path.join(dataset_dir, "devkit"), exist_ok=True)
    train_classes = _interleaved([counts(c)[0] + counts(c)[1] for c in range(len(CARS_CLASS_NAMES))])
    test_classes = _interleaved([counts(c)[2] for c in range(len(CARS_CLASS_NAMES))])
    cleaned = [" ".join(name.split(" ")[-1:] + name.split(" ")[:-1]) for name in CARS_CLASS_NAMES]
    entries = {c: [] for c in range(len(CARS_CLASS_NAMES))}
    for folder, classes in (("cars_train", train_classes), ("cars_test", test_classes)):
        fnames = [f"{i + 1:05d}.jpg" for i in range(len(classes))]
        for i, (c, fname) in enumerate(zip(classes, fnames)):
            write_image(os.path.join(dataset_dir, folder, fname), i)
            entries[c].append([f"{folder}/{fname}", c, cleaned[c]])
        annos = _cars_annotations(classes, fnames)
        if folder == "cars_train":
            savemat(os.path.join(dataset_dir, "devkit", "cars_train_annos.mat"), {"annotations": annos})
        else:
            savemat(os.path.join(dataset_dir, "cars_test_annos_withlabels.mat"), {"annotations": annos})
    class_names = np.empty((1, len(CARS_CLASS_NAMES)), dtype=object)
    for c, name in enumerate(CARS_CLASS_NAMES):
        class_names[0, c] = np.array([name])
    savemat(os.path.join(dataset_dir, "devkit", "cars_meta.mat"), {"class_names": class_names})
    write_split(os.path.join(dataset_dir, "split_zhou_StanfordCars.json"), _split_of(entries, FIRST_APPEARANCE))
    return dataset_dir


FLOWER_NAMES = ("pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
                "tiger lily")


def write_oxford_flowers(root: str) -> str:
    dataset_dir = os.path.join(root, "oxford_flowers")
    classes = _interleaved([sum(counts(c)) for c in range(len(FLOWER_NAMES))])
    entries = {c: [] for c in range(len(FLOWER_NAMES))}
    for i, c in enumerate(classes):
        imname = f"image_{i + 1:05d}.jpg"
        write_image(os.path.join(dataset_dir, "jpg", imname), i)
        entries[c].append([imname, c, FLOWER_NAMES[c]])
    savemat(os.path.join(dataset_dir, "imagelabels.mat"), {"labels": np.array([[c + 1 for c in classes]],
                                                                             dtype=np.uint8)})
    with open(os.path.join(dataset_dir, "cat_to_name.json"), "w") as f:
        json.dump({str(c + 1): name for c, name in enumerate(FLOWER_NAMES)}, f)
    write_split(os.path.join(dataset_dir, "split_zhou_OxfordFlowers.json"), _split_of(entries, FIRST_APPEARANCE))
    return dataset_dir


FOOD_CLASSES = ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad")


def write_food101(root: str) -> str:
    dataset_dir = os.path.join(root, "food-101")
    classes = [(name, name) for name in FOOD_CLASSES]
    _class_folder_dataset(dataset_dir, "images", classes,
                          lambda folder, k: f"{1005649 + 7919 * k + 131 * FOOD_CLASSES.index(folder)}.jpg",
                          "split_zhou_Food101.json")
    write_text(os.path.join(dataset_dir, "meta", "classes.txt"), FOOD_CLASSES)
    write_text(os.path.join(dataset_dir, "README.txt"), ["Food-101 (miniature)"])
    write_text(os.path.join(dataset_dir, "license_agreement.txt"), ["(miniature)"])
    return dataset_dir


# A subset of variants.txt in its order, with the names that contain spaces and slashes.
FGVC_VARIANTS = ("707-320", "A300B4", "BAE 146-200", "Cessna 172", "F-16A/B", "F/A-18")


def write_fgvc_aircraft(root: str) -> str:
    dataset_dir = os.path.join(root, "fgvc_aircraft")
    lists = {"train": [], "val": [], "test": []}
    image_id = 34309
    for label, variant in enumerate(FGVC_VARIANTS):
        for split, n in zip(("train", "val", "test"), counts(label)):
            for _ in range(n):
                image_id += 7
                write_image(os.path.join(dataset_dir, "images", f"{image_id:07d}.jpg"), image_id)
                lists[split].append(f"{image_id:07d} {variant}")
    write_text(os.path.join(dataset_dir, "variants.txt"), FGVC_VARIANTS)
    for split, lines in lists.items():
        write_text(os.path.join(dataset_dir, f"images_variant_{split}.txt"), lines)
    write_text(os.path.join(dataset_dir, "images_variant_trainval.txt"), lists["train"] + lists["val"])
    return dataset_dir


SUN_CLASS_PATHS = ("a/abbey", "a/airplane_cabin", "a/apartment_building/outdoor", "a/apse/indoor", "b/badlands",
                   "b/bakery/shop")


def _sun_name(label: int, k: int) -> str:
    letters = string.ascii_lowercase
    code = "".join(letters[(label * 7 + k * 3 + j * 11) % 26] for j in range(16))
    return f"sun_{code}.jpg"


def write_sun397(root: str) -> str:
    dataset_dir = os.path.join(root, "sun397")
    training, testing, entries = [], [], []
    for label, class_path in enumerate(SUN_CLASS_PATHS):
        n_train, n_val, n_test = counts(label)
        relpaths = [f"{class_path}/{_sun_name(label, k)}" for k in range(n_train + n_val + n_test)]
        for k, relpath in enumerate(relpaths):
            write_image(os.path.join(dataset_dir, "SUN397", relpath), label + k)
            (training if k < n_train + n_val else testing).append("/" + relpath)
        name = " ".join(class_path.split("/")[1:][::-1])
        entries.append([[relpath, label, name] for relpath in relpaths])
    write_text(os.path.join(dataset_dir, "ClassName.txt"), ["/" + path for path in SUN_CLASS_PATHS])
    write_text(os.path.join(dataset_dir, "Training_01.txt"), training)
    write_text(os.path.join(dataset_dir, "Testing_01.txt"), testing)
    write_split(os.path.join(dataset_dir, "split_zhou_SUN397.json"), _split_of(entries, range(len(entries))))
    return dataset_dir


DTD_CLASSES = ("banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed")


def write_dtd(root: str) -> str:
    dataset_dir = os.path.join(root, "dtd")
    _class_folder_dataset(dataset_dir, "images", [(name, name) for name in DTD_CLASSES],
                          lambda folder, k: f"{folder}_{k + 1:04d}.jpg", "split_zhou_DescribableTextures.json")
    write_text(os.path.join(dataset_dir, "labels", "train1.txt"), [f"{name}/{name}_0002.jpg" for name in DTD_CLASSES])
    return dataset_dir


EUROSAT_FOLDERS = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")
EUROSAT_NAMES = ("Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
                 "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake")


def write_eurosat(root: str) -> str:
    dataset_dir = os.path.join(root, "eurosat")
    _class_folder_dataset(dataset_dir, "2750", list(zip(EUROSAT_FOLDERS, EUROSAT_NAMES)),
                          lambda folder, k: f"{folder}_{k}.jpg", "split_zhou_EuroSAT.json")
    return dataset_dir


# (action in classInd.txt and the list folders, the action as spelled in its video names)
UCF_ACTIONS = (("ApplyEyeMakeup", "ApplyEyeMakeup"), ("Archery", "Archery"), ("BabyCrawling", "BabyCrawling"),
               ("HandstandPushups", "HandStandPushups"), ("PlayingDaf", "PlayingDaf"), ("YoYo", "YoYo"))
UCF_RENAMED = ("Apply_Eye_Makeup", "Archery", "Baby_Crawling", "Handstand_Pushups", "Playing_Daf", "Yo_Yo")


def write_ucf101(root: str) -> str:
    """The list files use Windows line endings, as the official ones do."""
    dataset_dir = os.path.join(root, "ucf101")
    trainlist, testlist, entries = [], [], []
    for label, ((action, video_action), renamed) in enumerate(zip(UCF_ACTIONS, UCF_RENAMED)):
        n_train, n_val, n_test = counts(label)
        videos = [f"v_{video_action}_g{8 + k // 3:02d}_c{1 + k % 3:02d}" for k in range(n_train + n_val + n_test)]
        for k, video in enumerate(videos):
            write_image(os.path.join(dataset_dir, "UCF-101-midframes", renamed, video + ".jpg"), label + k)
            if k < n_train + n_val:
                trainlist.append(f"{action}/{video}.avi {label + 1}")
            else:
                testlist.append(f"{action}/{video}.avi")
        entries.append([[f"{renamed}/{video}.jpg", label, renamed] for video in videos])
    list_dir = os.path.join(dataset_dir, "ucfTrainTestlist")
    write_text(os.path.join(list_dir, "classInd.txt"), [f"{i + 1} {a}" for i, (a, _) in enumerate(UCF_ACTIONS)],
               newline="\r\n")
    write_text(os.path.join(list_dir, "trainlist01.txt"), trainlist, newline="\r\n")
    write_text(os.path.join(list_dir, "testlist01.txt"), testlist, newline="\r\n")
    write_split(os.path.join(dataset_dir, "split_zhou_UCF101.json"), _split_of(entries, range(len(entries))))
    return dataset_dir


def write_classnames(dataset_dir: str) -> None:
    """CoOp's ``classnames.txt``: ``<wnid> <CLIP class name>`` for all 1000 classes, in sorted wnid order."""
    write_text(os.path.join(dataset_dir, "classnames.txt"),
               [f"{wnid} {name}" for wnid, name in zip(IMAGENET_WNIDS, CLIP_CLASSNAMES)])


# The ImageNet classes with image folders in the miniature (indices in the sorted wnid list).
IMAGENET_PRESENT = (0, 2, 97, CLIP_CLASSNAMES.index("baluster / handrail"), 600, 999)
IMAGENET_VAL_PER_CLASS = 2


def write_imagenet(root: str) -> str:
    dataset_dir = os.path.join(root, "imagenet")
    write_classnames(dataset_dir)
    val_index = 293
    for label, index in enumerate(IMAGENET_PRESENT):
        wnid = IMAGENET_WNIDS[index]
        for k in range(counts(label)[0]):
            write_image(os.path.join(dataset_dir, "images", "train", wnid, f"{wnid}_{10026 + 17 * k}.JPEG"), k)
        for k in range(IMAGENET_VAL_PER_CLASS):
            val_index += 11
            write_image(os.path.join(dataset_dir, "images", "val", wnid, f"ILSVRC2012_val_{val_index:08d}.JPEG"), k)
    return dataset_dir


def write_imagenetv2(root: str) -> str:
    """All 1000 integer folders, one image each (two in the first three)."""
    dataset_dir = os.path.join(root, "imagenetv2")
    write_classnames(dataset_dir)
    image_dir = os.path.join(dataset_dir, "imagenetv2-matched-frequency-format-val")
    for label in range(1000):
        for k in range(2 if label < 3 else 1):
            digest = f"{(label * 2654435761 + k * 40503) % 16 ** 40:040x}"
            write_image(os.path.join(image_dir, str(label), digest + ".jpeg"), label)
    return dataset_dir


IMAGENET_SKETCH_PRESENT = (1, 3, 150, 400, 777, 998)


def write_imagenet_sketch(root: str) -> str:
    dataset_dir = os.path.join(root, "imagenet-sketch")
    write_classnames(dataset_dir)
    for label, index in enumerate(IMAGENET_SKETCH_PRESENT):
        for k in range(2 + label % 2):
            write_image(os.path.join(dataset_dir, "images", IMAGENET_WNIDS[index], f"sketch_{k}.JPEG"), k)
    return dataset_dir


def _write_200_class_variant(dataset_dir: str, folder: str, wnids, imname) -> None:
    write_classnames(dataset_dir)
    image_dir = os.path.join(dataset_dir, folder)
    for position, wnid in enumerate(wnids):
        for k in range(1 + position % 2):
            write_image(os.path.join(image_dir, wnid, imname(wnid, k)), position)
    write_text(os.path.join(image_dir, "README.txt"), [f"{folder}: 200 ImageNet classes (miniature)"])


def write_imagenet_a(root: str) -> str:
    """File names like the real ones: ``<score>_<name> _ <name>_<score>.jpg``, with spaces."""
    dataset_dir = os.path.join(root, "imagenet-adversarial")
    _write_200_class_variant(dataset_dir, "imagenet-a", IMAGENET_META["imagenet_a_wnids"],
                             lambda wnid, k: f"0.{116 + k:06d}_digital clock _ digital clock_0.86566{k}.jpg")
    return dataset_dir


def write_imagenet_r(root: str) -> str:
    dataset_dir = os.path.join(root, "imagenet-rendition")
    _write_200_class_variant(dataset_dir, "imagenet-r", IMAGENET_META["imagenet_r_wnids"],
                             lambda wnid, k: f"{('art', 'cartoon')[k]}_{k}.jpg")
    return dataset_dir


WRITERS = {
    "ImageNet": write_imagenet,
    "Caltech101": write_caltech101,
    "OxfordPets": write_oxford_pets,
    "StanfordCars": write_stanford_cars,
    "OxfordFlowers": write_oxford_flowers,
    "Food101": write_food101,
    "FGVCAircraft": write_fgvc_aircraft,
    "SUN397": write_sun397,
    "DescribableTextures": write_dtd,
    "EuroSAT": write_eurosat,
    "UCF101": write_ucf101,
    "ImageNetV2": write_imagenetv2,
    "ImageNetSketch": write_imagenet_sketch,
    "ImageNetA": write_imagenet_a,
    "ImageNetR": write_imagenet_r,
}


def write_miniature(root: str, name: str) -> str:
    """Write the miniature of dataset ``name`` (its registry name) under ``root``; returns its folder."""
    return WRITERS[name](str(root))


def write_all(root: str) -> str:
    for writer in WRITERS.values():
        writer(str(root))
    return str(root)
