"""Image transforms built from ``INPUT.TRANSFORMS`` in Dassl's fixed order (Dassl's ``build_transform``).

Training: [resize] -> random_translation -> random_crop -> random_resized_crop -> random_flip ->
autoaugment policies -> randaugment -> colorjitter -> randomgrayscale -> gaussian_blur -> ToTensor ->
cutout -> normalize -> gaussian_noise -> instance_norm.
Test: Resize(max(SIZE)) -> CenterCrop(SIZE) -> ToTensor -> normalize / instance_norm if listed.
"""
import logging

import torch
from torchvision.transforms import (
    AutoAugment,
    AutoAugmentPolicy,
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    Normalize,
    RandAugment,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)
from torchvision.transforms import InterpolationMode

from ...errors import UserError

logger = logging.getLogger(__name__)

AVAI_CHOICES = [
    "random_flip", "random_resized_crop", "normalize", "instance_norm", "random_crop", "random_translation",
    "center_crop", "cutout", "imagenet_policy", "cifar10_policy", "svhn_policy", "randaugment",
    "gaussian_noise", "colorjitter", "randomgrayscale", "gaussian_blur",
]

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """Enlarge the image by 1/8, then take a random crop of the target size (with probability p)."""

    def __init__(self, height: int, width: int, p: float = 0.5, interpolation=InterpolationMode.BILINEAR):
        self.height, self.width, self.p = height, width, p
        self.interpolation = interpolation

    def __call__(self, img):
        if torch.rand(1).item() > self.p:
            return Resize((self.height, self.width), interpolation=self.interpolation)(img)
        new_h, new_w = round(self.height * 1.125), round(self.width * 1.125)
        img = Resize((new_h, new_w), interpolation=self.interpolation)(img)
        return RandomCrop((self.height, self.width))(img)


class Cutout:
    """Zero ``n_holes`` random square patches of side ``length`` of a (C, H, W) tensor."""

    def __init__(self, n_holes: int = 1, length: int = 16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:]
        mask = torch.ones(h, w, dtype=img.dtype)
        for _ in range(self.n_holes):
            y = int(torch.randint(h, (1,)))
            x = int(torch.randint(w, (1,)))
            y1, y2 = max(0, y - self.length // 2), min(h, y + self.length // 2)
            x1, x2 = max(0, x - self.length // 2), min(w, x + self.length // 2)
            mask[y1:y2, x1:x2] = 0
        return img * mask


class GaussianNoise:
    """Add N(mean, std^2) noise with probability p."""

    def __init__(self, mean: float = 0.0, std: float = 0.15, p: float = 0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() > self.p:
            return img
        return img + torch.randn_like(img) * self.std + self.mean


class InstanceNormalization:
    """Normalize each channel of a (C, H, W) tensor by its own mean and std."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        c = img.shape[0]
        flat = img.reshape(c, -1)
        mean = flat.mean(1).view(c, 1, 1)
        std = flat.std(1).view(c, 1, 1)
        return (img - mean) / (std + 1e-8)


def _check(choices) -> None:
    unknown = [c for c in choices if c not in AVAI_CHOICES]
    if unknown:
        raise UserError(f"unknown transform(s) in INPUT.TRANSFORMS: {unknown}. Available: {AVAI_CHOICES}")


def build_transform(cfg, is_train: bool = True, choices=None):
    """Build the training or test transform from ``cfg.INPUT``; None when ``INPUT.NO_TRANSFORM``."""
    if cfg.INPUT.NO_TRANSFORM:
        logger.info("Note: no transform is applied!")
        return None
    if choices is None:
        choices = cfg.INPUT.TRANSFORMS
    _check(choices)
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise UserError(f'INPUT.INTERPOLATION must be one of {list(INTERPOLATION_MODES)}, got "{cfg.INPUT.INTERPOLATION}"')
    expected_size = f"{cfg.INPUT.SIZE[0]}x{cfg.INPUT.SIZE[1]}"
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_transform_train(cfg, choices, expected_size, normalize)
    return _build_transform_test(cfg, choices, expected_size, normalize)


def _build_transform_train(cfg, choices, expected_size, normalize):
    logger.info("Building transform_train")
    tfm = []
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    conditions = ["random_crop" not in choices, "random_resized_crop" not in choices]
    if all(conditions):
        logger.info(f"+ resize to {expected_size}")
        tfm.append(Resize(size, interpolation=interp))
    if "random_translation" in choices:
        logger.info("+ random translation")
        tfm.append(Random2DTranslation(size[0], size[1], interpolation=interp))
    if "random_crop" in choices:
        pad = cfg.INPUT.CROP_PADDING
        logger.info(f"+ random crop (padding = {pad})")
        tfm.append(RandomCrop(size, padding=pad))
    if "random_resized_crop" in choices:
        scale = tuple(cfg.INPUT.RRCROP_SCALE)
        logger.info(f"+ random resized crop (size={size}, scale={scale})")
        tfm.append(RandomResizedCrop(size, scale=scale, interpolation=interp))
    if "center_crop" in choices:
        logger.info(f"+ center crop (size: {expected_size})")
        tfm.append(CenterCrop(size))
    if "random_flip" in choices:
        logger.info("+ random flip")
        tfm.append(RandomHorizontalFlip())
    for name, policy in [("imagenet_policy", AutoAugmentPolicy.IMAGENET), ("cifar10_policy", AutoAugmentPolicy.CIFAR10),
                         ("svhn_policy", AutoAugmentPolicy.SVHN)]:
        if name in choices:
            logger.info(f"+ {name.replace('_', ' ')}")
            tfm.append(AutoAugment(policy))
    if "randaugment" in choices:
        n, m = cfg.INPUT.RANDAUGMENT_N, cfg.INPUT.RANDAUGMENT_M
        logger.info(f"+ randaugment (n={n}, m={m})")
        tfm.append(RandAugment(num_ops=n, magnitude=m))
    if "colorjitter" in choices:
        b, c, s, h = (cfg.INPUT.COLORJITTER_B, cfg.INPUT.COLORJITTER_C, cfg.INPUT.COLORJITTER_S,
                      cfg.INPUT.COLORJITTER_H)
        logger.info(f"+ color jitter (brightness={b}, contrast={c}, saturation={s}, hue={h})")
        tfm.append(ColorJitter(brightness=b, contrast=c, saturation=s, hue=h))
    if "randomgrayscale" in choices:
        logger.info("+ random gray scale")
        tfm.append(RandomGrayscale(p=cfg.INPUT.RGS_P))
    if "gaussian_blur" in choices:
        gb_k, gb_p = cfg.INPUT.GB_K, cfg.INPUT.GB_P
        logger.info(f"+ gaussian blur (kernel={gb_k}, p={gb_p})")
        tfm.append(RandomApply([GaussianBlur(gb_k)], p=gb_p))
    logger.info("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "cutout" in choices:
        logger.info(f"+ cutout (n_holes={cfg.INPUT.CUTOUT_N}, length={cfg.INPUT.CUTOUT_LEN})")
        tfm.append(Cutout(cfg.INPUT.CUTOUT_N, cfg.INPUT.CUTOUT_LEN))
    if "normalize" in choices:
        logger.info(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    if "gaussian_noise" in choices:
        logger.info(f"+ gaussian noise (mean={cfg.INPUT.GN_MEAN}, std={cfg.INPUT.GN_STD})")
        tfm.append(GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD))
    if "instance_norm" in choices:
        logger.info("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)


def _build_transform_test(cfg, choices, expected_size, normalize):
    logger.info("Building transform_test")
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    logger.info(f"+ resize the smaller edge to {max(cfg.INPUT.SIZE)}")
    logger.info(f"+ {expected_size} center crop")
    tfm = [Resize(max(cfg.INPUT.SIZE), interpolation=interp), CenterCrop(tuple(cfg.INPUT.SIZE))]
    logger.info("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "normalize" in choices:
        logger.info(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    if "instance_norm" in choices:
        logger.info("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)
