"""Drawing the generated images: shapes, colours, texture patterns, and scikit-learn's handwritten digits.

Every function takes a ``random.Random`` and draws the same image for the same generator state, so the
datasets and the pre-training corpus are deterministic under a seed. Images are drawn at 64 pixels; the
models read them at 32.
"""
import math
import random
from typing import Tuple

from PIL import Image, ImageDraw, ImageFilter

Colour = Tuple[int, int, int]

COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (230, 180, 30),
           "purple": (160, 60, 200), "orange": (240, 120, 30), "teal": (20, 170, 180), "brown": (120, 70, 40)}
# more colours for the pre-training corpus and Mini-B2N (DemoShapes keeps the eight above)
EXTRA_COLOURS = {"pink": (240, 120, 180), "black": (30, 30, 30), "grey": (128, 128, 128), "white": (245, 245, 245)}
ALL_COLOURS = {**COLOURS, **EXTRA_COLOURS}

DEMO_SHAPES = ["circle", "cross", "crescent", "diamond", "heart", "hexagon", "ring", "square", "star", "triangle"]
SHAPES = DEMO_SHAPES + ["pentagon", "arrow", "semicircle", "oval", "trapezoid", "rectangle"]

TEXTURES = ["striped", "dotted", "checkered", "grid", "zigzag", "wavy", "crosshatched", "spotted", "smooth",
            "speckled", "concentric", "brick", "diagonal", "swirly", "honeycomb", "woven"]

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _polygon(cx, cy, radius, sides, rotation, inner=None):
    points = []
    count = sides * (2 if inner else 1)
    for i in range(count):
        r = inner * radius if inner and i % 2 else radius
        angle = rotation + 2 * math.pi * i / count
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def _rotated(cx, cy, rot, corners):
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in corners]


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
    elif shape == "diamond":  # a rhombus, taller than wide
        draw.polygon(_rotated(cx, cy, rot, ((0, -r), (0.6 * r, 0), (0, r), (-0.6 * r, 0))), fill=colour)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, r, 3, rot), fill=colour)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, r, 6, rot), fill=colour)
    elif shape == "pentagon":
        draw.polygon(_polygon(cx, cy, r, 5, rot), fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, r, 5, rot, inner=0.42), fill=colour)
    elif shape == "cross":
        w = r * 0.35
        for angle in (rot, rot + math.pi / 2):
            draw.polygon(_rotated(cx, cy, angle, ((-r, -w), (r, -w), (r, w), (-r, w))), fill=colour)
    elif shape == "heart":
        draw.ellipse([cx - r, cy - r * 0.7, cx, cy + r * 0.1], fill=colour)
        draw.ellipse([cx, cy - r * 0.7, cx + r, cy + r * 0.1], fill=colour)
        draw.polygon([(cx - r * 0.97, cy - r * 0.15), (cx + r * 0.97, cy - r * 0.15), (cx, cy + r)], fill=colour)
    elif shape == "arrow":
        corners = ((-r, -0.25 * r), (0.1 * r, -0.25 * r), (0.1 * r, -0.7 * r), (r, 0), (0.1 * r, 0.7 * r),
                   (0.1 * r, 0.25 * r), (-r, 0.25 * r))
        draw.polygon(_rotated(cx, cy, rot, corners), fill=colour)
    elif shape == "semicircle":
        corners = [(r * math.cos(a), -r * math.sin(a)) for a in (math.pi * i / 16 for i in range(17))]
        draw.polygon(_rotated(cx, cy + 0.3 * r, rot, corners), fill=colour)
    elif shape == "oval":
        corners = [(r * math.cos(a), 0.55 * r * math.sin(a)) for a in (2 * math.pi * i / 24 for i in range(24))]
        draw.polygon(_rotated(cx, cy, rot, corners), fill=colour)
    elif shape == "trapezoid":
        draw.polygon(_rotated(cx, cy, rot, ((-r, 0.6 * r), (r, 0.6 * r), (0.45 * r, -0.6 * r), (-0.45 * r, -0.6 * r))),
                     fill=colour)
    elif shape == "rectangle":
        draw.polygon(_rotated(cx, cy, rot, ((-r, -0.5 * r), (r, -0.5 * r), (r, 0.5 * r), (-r, 0.5 * r))), fill=colour)
    else:
        raise ValueError(f"unknown shape {shape}")


def background_colour(rng: random.Random) -> Colour:
    base = rng.randint(200, 250)
    return base, base - rng.randint(0, 25), base - rng.randint(0, 25)


def _faint_lines(draw, rng, size, background) -> None:
    for _ in range(rng.randint(3, 8)):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        tone = tuple(max(0, c - rng.randint(10, 30)) for c in background)
        draw.line([(x, y), (x + rng.uniform(-20, 20), y + rng.uniform(-20, 20))], fill=tone, width=1)


def render(shape: str, rng: random.Random, size: int = 64, colour: str = None) -> Image.Image:
    """DemoShapes' image of ``shape``: a random colour (unless given), size, position and rotation on a
    light, faintly textured background."""
    background = background_colour(rng)
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    _faint_lines(draw, rng, size, background)
    colour = COLOURS[colour] if colour else rng.choice(list(COLOURS.values()))
    r = rng.uniform(0.25, 0.4) * size
    cx = rng.uniform(r + 2, size - r - 2)
    cy = rng.uniform(r + 2, size - r - 2)
    draw_shape(draw, shape, cx, cy, r, rng.uniform(0, 2 * math.pi), colour, background)
    return img.filter(ImageFilter.GaussianBlur(radius=0.4))


def jitter(colour: Colour, rng: random.Random, amount: int = 25) -> Colour:
    return tuple(min(255, max(0, c + rng.randint(-amount, amount))) for c in colour)


def render_object(shape: str, colour: Colour, rng: random.Random, scale: float, centre: Tuple[float, float],
                  background: Colour, size: int = 64, clutter: int = 0) -> Image.Image:
    """One ``shape`` of radius ``scale * size`` at ``centre`` (fractions of the image) on ``background``,
    with faint lines and ``clutter`` small grey strokes."""
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    _faint_lines(draw, rng, size, background)
    for _ in range(clutter):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        tone = jitter((110, 110, 110), rng, 40)
        draw.line([(x, y), (x + rng.uniform(-10, 10), y + rng.uniform(-10, 10))], fill=tone, width=2)
    r = scale * size
    cx, cy = centre[0] * size, centre[1] * size
    draw_shape(draw, shape, cx, cy, r, rng.uniform(0, 2 * math.pi), colour, background)
    return img.filter(ImageFilter.GaussianBlur(radius=0.4))


def render_texture(texture: str, rng: random.Random, fg: Colour, bg: Colour, size: int = 64) -> Image.Image:
    """A whole image of ``texture`` in two colours, at a random scale, phase and (where it has one) angle."""
    big = size * 2  # drawn larger, rotated, then cropped to the middle: no empty corners
    img = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(img)
    period = rng.uniform(7, 13)
    phase = rng.uniform(0, period)
    width = max(1, round(period * rng.uniform(0.3, 0.45)))
    rotate = True
    if texture in ("striped", "diagonal"):
        y = phase - period
        while y < big:
            draw.rectangle([0, y, big, y + width], fill=fg)
            y += period
        if texture == "diagonal":
            img, rotate = img.rotate(45 + rng.uniform(-8, 8), resample=Image.BILINEAR), False
        else:
            img, rotate = img.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR), False
    elif texture == "dotted":
        dot = period * rng.uniform(0.18, 0.28)
        for i in range(int(big / period) + 2):
            for j in range(int(big / period) + 2):
                x, y = phase + i * period, phase + j * period
                draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=fg)
    elif texture == "checkered":
        for i in range(int(big / period) + 2):
            for j in range(int(big / period) + 2):
                if (i + j) % 2 == 0:
                    x, y = phase + (i - 1) * period, phase + (j - 1) * period
                    draw.rectangle([x, y, x + period, y + period], fill=fg)
    elif texture == "grid":
        line = max(1, width // 2)
        k = phase - period
        while k < big:
            draw.rectangle([k, 0, k + line, big], fill=fg)
            draw.rectangle([0, k, big, k + line], fill=fg)
            k += period
    elif texture == "crosshatched":
        line = max(1, width // 2)
        for sign in (1, -1):
            k = -big
            while k < 2 * big:
                draw.line([(k, 0), (k + sign * big, big)], fill=fg, width=line)
                k += period
        rotate = False
    elif texture == "zigzag":
        amp = period * 0.5
        y = phase - period
        while y < big + period:
            points = [(x, y + (amp if (x // period) % 2 else 0)) for x in range(0, big + int(period), int(period))]
            draw.line(points, fill=fg, width=width)
            y += period * 1.3
    elif texture == "wavy":
        amp = period * rng.uniform(0.3, 0.5)
        y = phase - period
        while y < big + period:
            points = [(x, y + amp * math.sin(2 * math.pi * x / (period * 2.5))) for x in range(0, big + 1, 2)]
            draw.line(points, fill=fg, width=width)
            y += period * 1.2
    elif texture == "spotted":
        for _ in range(int((big / period) ** 2 * 0.5)):
            x, y, r = rng.uniform(0, big), rng.uniform(0, big), rng.uniform(0.2, 0.6) * period
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fg)
        rotate = False
    elif texture == "smooth":
        for _ in range(3):
            x, y, r = rng.uniform(0, big), rng.uniform(0, big), rng.uniform(0.3, 0.6) * big
            draw.ellipse([x - r, y - r, x + r, y + r], fill=jitter(bg, rng, 12))
        img, rotate = img.filter(ImageFilter.GaussianBlur(radius=6)), False
    elif texture == "speckled":
        density = rng.uniform(0.06, 0.12)
        noise = Image.frombytes("L", (big // 2, big // 2), rng.randbytes((big // 2) ** 2))
        mask = noise.point(lambda v: 255 if v < 256 * density else 0).resize((big, big), Image.NEAREST)
        img.paste(Image.new("RGB", (big, big), fg), (0, 0), mask)
        rotate = False
    elif texture == "concentric":
        cx, cy = rng.uniform(0.3, 0.7) * big, rng.uniform(0.3, 0.7) * big
        r = phase
        while r < big * 1.5:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=width)
            r += period
        rotate = False
    elif texture == "brick":
        line = max(1, width // 2)
        h, w = period, period * 2
        row = 0
        y = phase - h
        while y < big:
            draw.rectangle([0, y, big, y + line], fill=fg)
            offset = (w / 2) * (row % 2)
            x = offset - w
            while x < big:
                draw.rectangle([x, y, x + line, y + h], fill=fg)
                x += w
            y += h
            row += 1
    elif texture == "swirly":
        cx, cy = rng.uniform(0.35, 0.65) * big, rng.uniform(0.35, 0.65) * big
        points = []
        turns = big * 1.2 / period
        for i in range(int(turns * 40)):
            a = 2 * math.pi * i / 40
            r = period * a / (2 * math.pi)
            points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        draw.line(points, fill=fg, width=width)
        rotate = False
    elif texture == "honeycomb":
        r = period * 0.6
        dx, dy = r * math.sqrt(3), r * 1.5
        for j in range(int(big / dy) + 2):
            for i in range(int(big / dx) + 2):
                x = i * dx + (dx / 2) * (j % 2) + phase
                y = j * dy + phase
                draw.polygon(_polygon(x, y, r, 6, math.pi / 6), outline=fg, width=max(1, width // 2))
    elif texture == "woven":
        for i in range(int(big / period) + 2):
            for j in range(int(big / period) + 2):
                x, y = (i - 1) * period + phase, (j - 1) * period + phase
                if (i + j) % 2:
                    for k in range(3):
                        yy = y + (k + 0.5) * period / 3
                        draw.line([(x, yy), (x + period, yy)], fill=fg, width=max(1, width // 2))
                else:
                    for k in range(3):
                        xx = x + (k + 0.5) * period / 3
                        draw.line([(xx, y), (xx, y + period)], fill=fg, width=max(1, width // 2))
    else:
        raise ValueError(f"unknown texture {texture}")
    if rotate:
        img = img.rotate(rng.uniform(0, 90), resample=Image.BILINEAR)
    left = (big - size) // 2
    img = img.crop((left, left, left + size, left + size))
    return img.filter(ImageFilter.GaussianBlur(radius=0.5))


def render_digit(pixels, rng: random.Random, ink: Colour, paper: Colour, size: int = 64) -> Image.Image:
    """One of scikit-learn's 8 x 8 handwritten digits (values 0..16), enlarged to a random size, slightly
    rotated and placed at a random position, in ``ink`` on ``paper``."""
    grey = Image.new("L", (8, 8))
    grey.putdata([int(round(v * 255 / 16)) for row in pixels for v in row])
    side = int(size * rng.uniform(0.55, 0.85))
    mask = grey.resize((side, side), Image.BICUBIC).rotate(rng.uniform(-15, 15), resample=Image.BILINEAR)
    img = Image.new("RGB", (size, size), paper)
    x, y = rng.randint(0, size - side), rng.randint(0, size - side)
    img.paste(Image.new("RGB", (side, side), ink), (x, y), mask)
    return img.filter(ImageFilter.GaussianBlur(radius=0.4))
