"""The generated image-caption corpus with compositional structure, and the scenes Mini-B2N is made of.

Three kinds of scene, each with the attributes its captions can name:

- **object**: one shape (16) in a colour (12), small or large, left/right/top/bottom/middle, on a light
  or dark background with faint lines and a few grey strokes;
- **texture**: a whole image of a pattern (16) in two colours, at a random scale and angle;
- **digit**: one of scikit-learn's handwritten digits (real scans, 8 x 8) in an ink colour on paper.

A caption names some of a scene's attributes in one of several phrasings, with words that name none of
them ("a quick sketch of", "clip art of"): a model trained on it learns shapes, colours, patterns and
digits as concepts it can be asked about in any phrasing, which is what zero-shot classification needs.
The same samplers draw Mini-B2N's images (with the class attribute fixed and another seed); the digit
scans are split in two disjoint halves, one for pre-training and one for the benchmark.
"""
import gzip
import importlib.util
import os
import random
from typing import Dict, FrozenSet, List, Optional, Tuple

from PIL import Image

from ..errors import UserError
from .drawing import (
    ALL_COLOURS,
    DIGIT_WORDS,
    SHAPES,
    TEXTURES,
    background_colour,
    jitter,
    render_digit,
    render_object,
    render_texture,
)

DARK_BACKGROUNDS = {"dark": (40, 40, 48)}
SIZES = {"small": (0.18, 0.24), "large": (0.32, 0.4)}
KINDS = ("object", "texture", "digit")


def digit_scans() -> List[Tuple[list, int]]:
    """scikit-learn's 1,797 handwritten digit scans, [(8 x 8 pixel rows with values 0..16, digit)], read from
    the file the package ships (``sklearn.datasets.load_digits`` reads the same; importing scikit-learn takes
    seconds)."""
    spec = importlib.util.find_spec("sklearn")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec else ""
    if not os.path.isfile(path):
        raise UserError("the handwritten digits come from scikit-learn, which is not installed: "
                        "pip install scikit-learn")
    with gzip.open(path, "rt") as f:
        rows = [[int(float(v)) for v in line.split(",")] for line in f if line.strip()]
    return [([row[i:i + 8] for i in range(0, 64, 8)], row[64]) for row in rows]


def digit_images(part: str) -> List[Tuple[list, int]]:
    """The digit scans of one half: "pretrain" (even positions in the package's order) or "benchmark" (odd):
    no scan is in both."""
    start = {"pretrain": 0, "benchmark": 1}[part]
    return digit_scans()[start::2]


def _position(cx: float, cy: float) -> str:
    dx, dy = cx - 0.5, cy - 0.5
    if max(abs(dx), abs(dy)) < 0.12:
        return "in the middle"
    if abs(dx) >= abs(dy):
        return "on the left" if dx < 0 else "on the right"
    return "at the top" if dy < 0 else "at the bottom"


def sample_object(rng: random.Random, shape: Optional[str] = None, colour: Optional[str] = None,
                  size: int = 64) -> Tuple[Image.Image, Dict[str, str]]:
    """An object scene; ``shape`` and ``colour`` are drawn at random unless given."""
    shape = shape or rng.choice(SHAPES)
    dark = rng.random() < 0.3
    if colour is None:
        colour = rng.choice([c for c in ALL_COLOURS if c != ("black" if dark else "white")])
    background = jitter(DARK_BACKGROUNDS["dark"], rng, 15) if dark else background_colour(rng)
    size_word = rng.choice(["small", "large", ""])
    low, high = SIZES.get(size_word, (0.24, 0.32))
    scale = rng.uniform(low, high)
    cx, cy = (rng.uniform(scale + 0.04, 1 - scale - 0.04) for _ in range(2))
    img = render_object(shape, jitter(ALL_COLOURS[colour], rng, 20), rng, scale, (cx, cy), background, size,
                        clutter=rng.randint(0, 2))
    attrs = {"kind": "object", "shape": shape, "colour": colour, "size": size_word, "where": _position(cx, cy),
             "background": "dark" if dark else "light"}
    return img, attrs


def sample_texture(rng: random.Random, texture: Optional[str] = None, size: int = 64):
    texture = texture or rng.choice(TEXTURES)
    first, second = rng.sample([c for c in ALL_COLOURS if c != "grey"], 2)
    img = render_texture(texture, rng, jitter(ALL_COLOURS[first], rng, 20), jitter(ALL_COLOURS[second], rng, 20),
                         size)
    return img, {"kind": "texture", "texture": texture, "colour": first, "colour2": second}


def sample_digit(rng: random.Random, scans, digit: Optional[int] = None, size: int = 64):
    """A digit scene from ``scans`` (``digit_images(...)``), of ``digit`` unless None."""
    candidates = scans if digit is None else [s for s in scans if s[1] == digit]
    pixels, value = rng.choice(candidates)
    ink = rng.choice(["black", "blue", "red", "green", "purple", "brown"])
    dark = rng.random() < 0.2
    paper = jitter((35, 35, 40), rng, 10) if dark else background_colour(rng)
    if dark and ink in ("black", "blue", "purple", "brown"):
        ink = "white"
    img = render_digit(pixels, rng, jitter(ALL_COLOURS[ink], rng, 15), paper, size)
    return img, {"kind": "digit", "digit": DIGIT_WORDS[value], "numeral": str(value), "colour": ink,
                 "background": "dark" if dark else "light"}


# ------------------------------------------------------------------------------------------- captions

# Mini-B2N's zero-shot templates ("a photo of a {}.", "{} texture.", "a photo of the digit {}.") are not among
# the phrasings, as a hand-made prompt is not the text real CLIP saw most: learned prompts have room to do better.
OBJECT_FRAMES = ["a {np}.", "a drawing of a {np}.", "an image of a {np}{where}.",
                 "a {np} on a {background} background.", "there is a {np}{where}.", "this is a {np}.",
                 "a quick sketch of a {np}.", "clip art of a {np}{where}.", "{np}", "a {np}, drawn{where}.",
                 "a picture with a {np} in it."]
TEXTURE_FRAMES = ["a {t} pattern.", "a photo of a {t} texture.", "a {t} surface in {c} and {c2}.",
                  "a {c} and {c2} {t} pattern.", "a close-up of something {t}.", "a photo of a {t} pattern.",
                  "fabric with a {t} design.", "{t}"]
DIGIT_FRAMES = ["the number {w}.", "a handwritten {w}.", "a handwritten digit {n}.",
                "the digit {n} written in {c}.", "a {c} {w} on {background} paper.", "a photo of the number {w}.",
                "a scan of a handwritten {w}.", "{w}", "the number {n}."]


def facts(attrs: Dict[str, str]) -> FrozenSet[str]:
    """What is true of a scene, as "attribute:value" strings (a caption is true of it when everything it
    names is among these)."""
    kind = attrs["kind"]
    out = {f"colour:{attrs['colour']}"}
    if kind == "object":
        out |= {f"shape:{attrs['shape']}", f"where:{attrs['where']}", f"background:{attrs['background']}"}
        if attrs["size"]:
            out.add(f"size:{attrs['size']}")
    elif kind == "texture":
        out |= {f"texture:{attrs['texture']}", f"colour:{attrs['colour2']}"}
    else:
        out |= {f"digit:{attrs['digit']}", f"background:{attrs['background']}"}
    return frozenset(out)


def caption(attrs: Dict[str, str], rng: random.Random) -> Tuple[str, FrozenSet[str]]:
    """One caption of a scene: a random phrasing naming a random subset of its attributes (the object's
    shape, the pattern and the digit always), and the facts it names."""
    kind = attrs["kind"]
    if kind == "object":
        words, named = [], {f"shape:{attrs['shape']}"}
        if attrs["size"] and rng.random() < 0.4:
            words.append(attrs["size"])
            named.add(f"size:{attrs['size']}")
        if rng.random() < 0.6:
            words.append(attrs["colour"])
            named.add(f"colour:{attrs['colour']}")
        words.append(attrs["shape"])
        where = f" {attrs['where']}" if rng.random() < 0.4 else ""
        frame = rng.choice(OBJECT_FRAMES)
        if "{where}" in frame and where:
            named.add(f"where:{attrs['where']}")
        if "{background}" in frame:
            named.add(f"background:{attrs['background']}")
        text = frame.format(np=" ".join(words), where=where, background=attrs["background"])
    elif kind == "texture":
        frame = rng.choice(TEXTURE_FRAMES)
        named = {f"texture:{attrs['texture']}"}
        if "{c}" in frame:
            named |= {f"colour:{attrs['colour']}", f"colour:{attrs['colour2']}"}
        text = frame.format(t=attrs["texture"], c=attrs["colour"], c2=attrs["colour2"])
    else:
        frame = rng.choice(DIGIT_FRAMES)
        named = {f"digit:{attrs['digit']}"}
        if "{c}" in frame:
            named.add(f"colour:{attrs['colour']}")
        if "{background}" in frame:
            named.add(f"background:{attrs['background']}")
        paper = "dark" if attrs["background"] == "dark" else "white"
        text = frame.format(w=attrs["digit"], n=attrs["numeral"], c=attrs["colour"], background=paper)
    return text, frozenset(named)  # "a" before every noun, as in CoOp's templates ("a photo of a {}.")


def sample_scene(rng: random.Random, scans, weights=(0.4, 0.25, 0.35)) -> Tuple[Image.Image, Dict[str, str]]:
    kind = rng.choices(KINDS, weights=weights)[0]
    if kind == "object":
        return sample_object(rng)
    if kind == "texture":
        return sample_texture(rng)
    return sample_digit(rng, scans)


def make_corpus(count: int, seed: int, captions_per_image: int = 3, size: int = 32):
    """``count`` scenes at ``size`` pixels with ``captions_per_image`` captions each:
    (images, [[(caption, facts it names)] per image], [facts of each image])."""
    rng = random.Random(seed)
    scans = digit_images("pretrain")
    images: List[Image.Image] = []
    captions: List[List[Tuple[str, FrozenSet[str]]]] = []
    truths: List[FrozenSet[str]] = []
    for _ in range(count):
        img, attrs = sample_scene(rng, scans)
        images.append(img.resize((size, size), Image.BICUBIC))
        captions.append([caption(attrs, rng) for _ in range(captions_per_image)])
        truths.append(facts(attrs))
    return images, captions, truths
