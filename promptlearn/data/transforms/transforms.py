"""Image transforms from ``INPUT.TRANSFORMS`` (Dassl's names and order; the order of the list does not matter).

Training, in this order, each step only when listed: a resize to INPUT.SIZE when no crop is listed,
random_translation, random_crop, random_resized_crop, center_crop, random_flip, the AutoAugment policies
(imagenet/cifar10/svhn_policy), randaugment, colorjitter, randomgrayscale, gaussian_blur, then ToTensor,
cutout, normalize, gaussian_noise, instance_norm. Test: the shorter side resized to max(INPUT.SIZE), a centre
crop of INPUT.SIZE, ToTensor, then normalize and instance_norm when listed.
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
    InterpolationMode,
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

from ...errors import UserError

logger = logging.getLogger(__name__)

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """With probability p, enlarge the image by 1/8 and crop the target size at a random place; otherwise
    resize it to the target size."""

    def __init__(self, height: int, width: int, p: float = 0.5, interpolation=InterpolationMode.BILINEAR):
        self.height, self.width, self.p = height, width, p
        self.interpolation = interpolation

    def __call__(self, img):
        if torch.rand(1).item() > self.p:
            return Resize((self.height, self.width), interpolation=self.interpolation)(img)
        enlarged = (round(self.height * 1.125), round(self.width * 1.125))
        return RandomCrop((self.height, self.width))(Resize(enlarged, interpolation=self.interpolation)(img))


class Cutout:
    """Zero ``n_holes`` squares of side ``length`` centred at random pixels of a (C, H, W) tensor (clipped at
    the borders)."""

    def __init__(self, n_holes: int = 1, length: int = 16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:]
        keep = torch.ones(h, w, dtype=img.dtype)
        half = self.length // 2
        for _ in range(self.n_holes):
            cy, cx = int(torch.randint(h, (1,))), int(torch.randint(w, (1,)))
            keep[max(0, cy - half):min(h, cy + half), max(0, cx - half):min(w, cx + half)] = 0
        return img * keep


class GaussianNoise:
    """With probability p, add noise drawn from N(mean, std^2) to every value."""

    def __init__(self, mean: float = 0.0, std: float = 0.15, p: float = 0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() > self.p:
            return img
        return img + torch.randn_like(img) * self.std + self.mean


class InstanceNormalization:
    """Standardize each channel of a (C, H, W) tensor with its own mean and standard deviation."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        per_channel = img.flatten(1)
        mean = per_channel.mean(1)[:, None, None]
        std = per_channel.std(1)[:, None, None]
        return (img - mean) / (std + 1e-8)


def _training_steps(cfg, interpolation) -> list:
    """(name in INPUT.TRANSFORMS, factory) in the order the training chain applies them, after the resize."""
    i, size = cfg.INPUT, tuple(cfg.INPUT.SIZE)
    return [
        ("random_translation", lambda: Random2DTranslation(size[0], size[1], interpolation=interpolation)),
        ("random_crop", lambda: RandomCrop(size, padding=i.CROP_PADDING)),
        ("random_resized_crop", lambda: RandomResizedCrop(size, scale=tuple(i.RRCROP_SCALE),
                                                          interpolation=interpolation)),
        ("center_crop", lambda: CenterCrop(size)),
        ("random_flip", RandomHorizontalFlip),
        ("imagenet_policy", lambda: AutoAugment(AutoAugmentPolicy.IMAGENET)),
        ("cifar10_policy", lambda: AutoAugment(AutoAugmentPolicy.CIFAR10)),
        ("svhn_policy", lambda: AutoAugment(AutoAugmentPolicy.SVHN)),
        ("randaugment", lambda: RandAugment(num_ops=i.RANDAUGMENT_N, magnitude=i.RANDAUGMENT_M)),
        ("colorjitter", lambda: ColorJitter(brightness=i.COLORJITTER_B, contrast=i.COLORJITTER_C,
                                            saturation=i.COLORJITTER_S, hue=i.COLORJITTER_H)),
        ("randomgrayscale", lambda: RandomGrayscale(p=i.RGS_P)),
        ("gaussian_blur", lambda: RandomApply([GaussianBlur(i.GB_K)], p=i.GB_P)),
        (None, ToTensor),
        ("cutout", lambda: Cutout(i.CUTOUT_N, i.CUTOUT_LEN)),
        ("normalize", lambda: Normalize(mean=i.PIXEL_MEAN, std=i.PIXEL_STD)),
        ("gaussian_noise", lambda: GaussianNoise(i.GN_MEAN, i.GN_STD)),
        ("instance_norm", InstanceNormalization),
    ]


#: every name INPUT.TRANSFORMS may hold (in the order the training chain applies them)
AVAI_CHOICES = ["random_translation", "random_crop", "random_resized_crop", "center_crop", "random_flip",
                "imagenet_policy", "cifar10_policy", "svhn_policy", "randaugment", "colorjitter", "randomgrayscale",
                "gaussian_blur", "cutout", "normalize", "gaussian_noise", "instance_norm"]


def build_transform(cfg, is_train: bool = True, choices=None):
    """The training or test transform of ``cfg.INPUT`` (``choices`` replaces INPUT.TRANSFORMS); None when
    INPUT.NO_TRANSFORM is set."""
    if cfg.INPUT.NO_TRANSFORM:
        logger.info("INPUT.NO_TRANSFORM: the loaders return the decoded images")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    unknown = [name for name in choices if name not in AVAI_CHOICES]
    if unknown:
        raise UserError(f"unknown transform(s) in INPUT.TRANSFORMS: {unknown}. Available: {AVAI_CHOICES}")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise UserError(f"INPUT.INTERPOLATION must be one of {list(INTERPOLATION_MODES)}, "
                        f'got "{cfg.INPUT.INTERPOLATION}"')
    interpolation = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    if is_train:
        cropped = {"random_crop", "random_resized_crop"} & set(choices)
        chain = [] if cropped else [Resize(size, interpolation=interpolation)]
        chain += [make() for name, make in _training_steps(cfg, interpolation) if name is None or name in choices]
    else:
        chain = [Resize(max(size), interpolation=interpolation), CenterCrop(size), ToTensor()]
        if "normalize" in choices:
            chain.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        if "instance_norm" in choices:
            chain.append(InstanceNormalization())
    transform = Compose(chain)
    logger.info(f"{'Training' if is_train else 'Test'} transform:\n{transform}")
    return transform
