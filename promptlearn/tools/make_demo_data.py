"""Write the demo dataset DemoShapes: 10 classes of drawn shapes in CoOp's layout.

    <root>/demo_shapes/images/<class>/<class>_<nnn>.jpg
    <root>/demo_shapes/split_zhou_DemoShapes.json   {"train"|"val"|"test": [[relpath, label, classname], ...]}

Each image is one shape (the class) in a random colour, size, position and rotation on a textured
background, so the classes are easy for a person to tell apart. Labels follow the sorted class names
(base = the first five, new = the last five). Generation is deterministic for a given seed.
``num_classes`` keeps only the first N classes, e.g. 9 for a dataset whose base and new halves differ in
size (5 base, 4 new), as in OxfordPets, Food101 or DTD.

    python -m promptlearn.tools.make_demo_data --root DATA [--num-classes N]
"""
import argparse
import logging
import math
import os
import random

from PIL import Image, ImageDraw, ImageFilter

from ..errors import UserError
from ..utils.tools import write_json

logger = logging.getLogger(__name__)

DATASET_DIR = "demo_shapes"
SPLIT_FILE = "split_zhou_DemoShapes.json"
CLASSNAMES = ["circle", "cross", "crescent", "diamond", "heart", "hexagon", "ring", "square", "star", "triangle"]
COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (230, 180, 30),
           "purple": (160, 60, 200), "orange": (240, 120, 30), "teal": (20, 170, 180), "brown": (120, 70, 40)}
SPLIT_SIZES = {"train": 20, "val": 5, "test": 10}


def _polygon(cx, cy, radius, sides, rotation, inner=None):
    points = []
    count = sides * (2 if inner else 1)
    for i in range(count):
        r = inner * radius if inner and i % 2 else radius
        angle = rotation + 2 * math.pi * i / count
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, rot: float, colour,
               background) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        draw.ellipse([cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55], fill=background)
    elif shape == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        dx, dy = 0.5 * r * math.cos(rot), 0.5 * r * math.sin(rot)
        draw.ellipse([cx + dx - r * 0.85, cy + dy - r * 0.85, cx + dx + r * 0.85, cy + dy + r * 0.85], fill=background)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, r, 4, rot + math.pi / 4), fill=colour)
    elif shape == "diamond":
        c, s = math.cos(rot), math.sin(rot)
        corners = ((0, -r), (0.6 * r, 0), (0, r), (-0.6 * r, 0))  # a rhombus, taller than wide
        draw.polygon([(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in corners], fill=colour)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, r, 3, rot), fill=colour)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, r, 6, rot), fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, r, 5, rot, inner=0.42), fill=colour)
    elif shape == "cross":
        w = r * 0.35
        for angle in (rot, rot + math.pi / 2):
            c, s = math.cos(angle), math.sin(angle)
            pts = [(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in ((-r, -w), (r, -w), (r, w), (-r, w))]
            draw.polygon(pts, fill=colour)
    elif shape == "heart":
        draw.ellipse([cx - r, cy - r * 0.7, cx, cy + r * 0.1], fill=colour)
        draw.ellipse([cx, cy - r * 0.7, cx + r, cy + r * 0.1], fill=colour)
        draw.polygon([(cx - r * 0.97, cy - r * 0.15), (cx + r * 0.97, cy - r * 0.15), (cx, cy + r)], fill=colour)
    else:
        raise ValueError(f"unknown shape {shape}")


def render(shape: str, rng: random.Random, size: int = 64, colour: str = None) -> Image.Image:
    """One image of ``shape`` (random colour unless given, size, position, rotation, background)."""
    base = rng.randint(200, 250)
    background = (base, base - rng.randint(0, 25), base - rng.randint(0, 25))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 8)):  # faint texture
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        tone = tuple(max(0, c - rng.randint(10, 30)) for c in background)
        draw.line([(x, y), (x + rng.uniform(-20, 20), y + rng.uniform(-20, 20))], fill=tone, width=1)
    colour = COLOURS[colour] if colour else rng.choice(list(COLOURS.values()))
    r = rng.uniform(0.25, 0.4) * size
    cx = rng.uniform(r + 2, size - r - 2)
    cy = rng.uniform(r + 2, size - r - 2)
    draw_shape(draw, shape, cx, cy, r, rng.uniform(0, 2 * math.pi), colour, background)
    return img.filter(ImageFilter.GaussianBlur(radius=0.4))


def make_demo_dataset(root: str, seed: int = 0, split_sizes: dict = None, size: int = 64,
                      num_classes: int = len(CLASSNAMES)) -> str:
    """Write DemoShapes (its first ``num_classes`` classes) under ``root``; returns the dataset folder.
    Existing files are rewritten."""
    if not 1 <= num_classes <= len(CLASSNAMES):
        raise UserError(f"the demo dataset has 1 to {len(CLASSNAMES)} classes, got {num_classes}")
    split_sizes = split_sizes or SPLIT_SIZES
    rng = random.Random(seed)
    dataset_dir = os.path.join(os.path.abspath(os.path.expanduser(root)), DATASET_DIR)
    split = {name: [] for name in split_sizes}
    try:
        for label, classname in enumerate(CLASSNAMES[:num_classes]):
            class_dir = os.path.join(dataset_dir, "images", classname)
            os.makedirs(class_dir, exist_ok=True)
            index = 0
            for split_name, count in split_sizes.items():
                for _ in range(count):
                    relpath = f"{classname}/{classname}_{index:03d}.jpg"
                    render(classname, rng, size).save(os.path.join(dataset_dir, "images", relpath), quality=92)
                    split[split_name].append([relpath, label, classname])
                    index += 1
        write_json(split, os.path.join(dataset_dir, SPLIT_FILE))
    except OSError as err:
        raise UserError(f"cannot write the demo dataset to {dataset_dir} ({err.strerror or err}); "
                        "pass --root a folder that can be created and written.") from None
    return dataset_dir


def demo_dataset_exists(root: str) -> bool:
    return os.path.isfile(os.path.join(os.path.expanduser(root), DATASET_DIR, SPLIT_FILE))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="data root (the dataset goes to ROOT/demo_shapes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=len(CLASSNAMES),
                        help=f"keep the first N classes (default: all {len(CLASSNAMES)})")
    args = parser.parse_args(argv)
    path = make_demo_dataset(args.root, seed=args.seed, num_classes=args.num_classes)
    print(f"Wrote DemoShapes ({args.num_classes} classes) to {path}")


if __name__ == "__main__":
    main()
