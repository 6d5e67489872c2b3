"""Mini-B2N: small base-to-new datasets in CoOp's layout whose classes are concepts of mini-ViT's
pre-training corpus (corpus.py), drawn with other seeds than the corpus, so every test image is new to it.

| dataset | classes (base / new) | images |
|---|---|---|
| MiniShapes | 16 shapes (8 / 8) | drawn objects of any colour, size, place and background |
| MiniTextures | 16 patterns (8 / 8) | drawn textures in two random colours |
| MiniColourShapes | 20 colour-shape pairs (10 / 10, each colour and shape in both halves) | drawn objects |
| MiniDigits | the digits 0-9 (5 / 5) | scikit-learn's handwritten digit scans (the half not used in pre-training) |

Every class has 24 training, 6 validation and 40 test images (MiniDigits: 36 / 8 / 40 scans per class,
each scan used once). Labels put the base classes first.

    python -m promptlearn.demo.mini_b2n --root DATA [--dataset NAME ...]
"""
import argparse
import os
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, List

from PIL import Image

from ..errors import UserError
from .corpus import digit_images, sample_digit, sample_object, sample_texture
from .datasets import write_image_dataset
from .drawing import DIGIT_WORDS, SHAPES, TEXTURES

SPLIT_SIZES = {"train": 24, "val": 6, "test": 40}
COLOUR_SHAPE_COLOURS = ["red", "green", "blue", "yellow"]
COLOUR_SHAPE_SHAPES = ["circle", "heart", "square", "star", "triangle"]


@dataclass(frozen=True)
class MiniDataset:
    name: str  # DATASET.NAME, the reader
    folder: str  # under the data root; also the config name (configs/datasets/<folder>.yaml)
    classnames: List[str]  # in label order: the first half are the base classes
    draw: Callable[[str, random.Random], Image.Image]
    seed: int
    split_sizes: Dict[str, int] = field(default_factory=lambda: dict(SPLIT_SIZES))

    @property
    def split_file(self) -> str:
        return f"split_{self.name}.json"


def _colour_shape_classes() -> List[str]:
    """Base: the pairs with an even (colour index + shape index); new: the others. Each colour and each shape
    is in both halves, so the new classes are new compositions of seen attributes."""
    pairs = [(i, j) for i in range(len(COLOUR_SHAPE_COLOURS)) for j in range(len(COLOUR_SHAPE_SHAPES))]
    ordered = [p for p in pairs if sum(p) % 2 == 0] + [p for p in pairs if sum(p) % 2]
    return [f"{COLOUR_SHAPE_COLOURS[i]} {COLOUR_SHAPE_SHAPES[j]}" for i, j in ordered]


class _DigitDrawer:
    """Each scan of the benchmark half once, class by class, in the package's order."""

    def __init__(self):
        self.scans = None
        self.used = {}

    def __call__(self, classname: str, rng: random.Random) -> Image.Image:
        if self.scans is None:
            self.scans = digit_images("benchmark")
        digit = DIGIT_WORDS.index(classname)
        mine = [scan for scan in self.scans if scan[1] == digit]
        k = self.used.get(digit, 0)
        self.used[digit] = k + 1
        return sample_digit(rng, [mine[k]])[0]  # (an IndexError if the splits asked for more scans than there are)


def _datasets() -> Dict[str, MiniDataset]:
    shapes, textures = sorted(SHAPES), sorted(TEXTURES)
    return {d.folder: d for d in [
        MiniDataset("MiniShapes", "mini_shapes", shapes, lambda c, rng: sample_object(rng, shape=c)[0], seed=101),
        MiniDataset("MiniTextures", "mini_textures", textures, lambda c, rng: sample_texture(rng, texture=c)[0],
                    seed=102),
        MiniDataset("MiniColourShapes", "mini_colour_shapes", _colour_shape_classes(),
                    lambda c, rng: sample_object(rng, shape=c.split()[1], colour=c.split()[0])[0], seed=103),
        MiniDataset("MiniDigits", "mini_digits", list(DIGIT_WORDS), None, seed=104,
                    split_sizes={"train": 36, "val": 8, "test": 40}),
    ]}


MINI_B2N = _datasets()


def make_mini_dataset(root: str, folder: str) -> str:
    """Write one Mini-B2N dataset under ``root``; returns its folder."""
    if folder not in MINI_B2N:
        raise UserError(f'unknown Mini-B2N dataset "{folder}"; choose from {", ".join(MINI_B2N)}')
    spec = MINI_B2N[folder]
    draw = spec.draw or _DigitDrawer()
    return write_image_dataset(root, spec.folder, spec.split_file, spec.classnames, draw, spec.split_sizes, spec.seed)


def mini_dataset_exists(root: str, folder: str) -> bool:
    spec = MINI_B2N[folder]
    return os.path.isfile(os.path.join(os.path.expanduser(root), spec.folder, spec.split_file))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the Mini-B2N datasets (CoOp's layout) under a data root")
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", nargs="+", default=list(MINI_B2N), choices=list(MINI_B2N))
    args = parser.parse_args(argv)
    for folder in args.dataset:
        print(f"Wrote {MINI_B2N[folder].name} to {make_mini_dataset(args.root, folder)}")


if __name__ == "__main__":
    main()
