"""Self-supervised views of a raw (decoded, not yet normalized) training image, for GOPro and SLIP.

- ``build_mocov3_view``: the first of MoCo v3's two asymmetric views -- random resized crop (0.08, 1),
  colour jitter 0.4/0.4/0.2/0.1 with p 0.8, grayscale p 0.2, Gaussian blur sigma in [0.1, 2] always
  (PIL's blur, as MoCo v3's and the official GOPro code do: ``PILGaussianBlur``), horizontal flip.
- ``build_augmix_view``: random resized crop + flip, then AugMix (width 3, depth 1-3, Dirichlet(1,1,1)
  chain weights, Beta(1,1) blend with the crop) over the nine AugMix operations at the magnitudes of the
  official GOPro code (severity 1; see ``ReferenceAugMix``).
- ``build_slip_view``: SLIP's SimCLR view -- random resized crop (0.08, 1), colour jitter 0.4/0.4/0.4/0.1
  with p 0.8, grayscale p 0.2, Gaussian blur sigma in [0.1, 2] with p 0.5, horizontal flip.

Both end with ToTensor and CLIP's normalization and run as DataLoader transforms (one call per image,
in the workers), so every view is made from its own image and never round-trips through the device.
They run on one torch thread (``SingleThreadCompose``): DataLoader workers already do, and in the main
process (``DATALOADER.NUM_WORKERS`` 0) the small per-image tensor operations of ToTensor, Normalize and
AugMix gain nothing from a thread pool but stall it when another process keeps a core busy.
"""
import torch
from PIL import Image, ImageFilter
from torchvision.transforms import (
    AugMix,
    ColorJitter,
    Compose,
    GaussianBlur,
    Normalize,
    RandomApply,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ToTensor,
)

#: Levels are drawn from this many equally spaced bins over [0.1, 1) (the reference draws them continuously).
LEVEL_BINS = 90


class ReferenceAugMix(AugMix):
    """torchvision's AugMix with the operation magnitudes of the official GOPro code.

    torchvision already has AugMix's nine operations (without brightness/colour/contrast/sharpness),
    chain width and depth, and the Dirichlet/Beta mixing; only the severity mapping differs. The
    reference draws a level l ~ U(0.1, severity) per operation and maps it (``IMAGE_SIZE`` = the crop
    size W): rotate +/- int(3 l) degrees, shear +/- 0.03 l, translate +/- int(l W / 30) pixels, solarize
    threshold 256 - int(25.6 l), posterize to 4 - int(0.4 l) bits. At severity 1 that is rotate 0-2
    degrees, shear < 0.03, translate < W/30 pixels, solarize threshold 231-254, posterize 4 bits.
    torchvision's own table at severity 1 always picks its first bin (no rotation, shear or translation).
    """

    def __init__(self, severity: int = 1, mixture_width: int = 3, chain_depth: int = -1, alpha: float = 1.0):
        super().__init__(severity=1, mixture_width=mixture_width, chain_depth=chain_depth, alpha=alpha,
                         all_ops=False)
        self.reference_severity = severity
        # forward() draws bin indices in [0, severity) from a table of _PARAMETER_MAX bins: use them all
        self.severity = LEVEL_BINS
        self._PARAMETER_MAX = LEVEL_BINS

    def levels(self, num_bins: int) -> torch.Tensor:
        """Bin centres of U(0.1, severity)."""
        low, high = 0.1, float(self.reference_severity)
        return low + (high - low) * (torch.arange(num_bins, dtype=torch.float64) + 0.5) / num_bins

    def _augmentation_space(self, num_bins: int, image_size):
        level = self.levels(num_bins)
        height, width = image_size
        return {
            "ShearX": ((level * 0.3 / 10).float(), True),
            "ShearY": ((level * 0.3 / 10).float(), True),
            "TranslateX": ((level * (width / 3) / 10).floor().float(), True),
            "TranslateY": ((level * (height / 3) / 10).floor().float(), True),
            "Rotate": ((level * 30 / 10).floor().float(), True),
            "Posterize": ((4 - (level * 4 / 10).floor()).int(), False),
            "Solarize": ((256 - (level * 256 / 10).floor()).float(), False),
            "AutoContrast": (torch.tensor(0.0), False),
            "Equalize": (torch.tensor(0.0), False),
        }


class PILGaussianBlur(GaussianBlur):
    """torchvision's ``GaussianBlur`` (sigma ~ U(sigma_min, sigma_max) per image) computed by PIL for PIL images.

    PIL's ``ImageFilter.GaussianBlur(radius=sigma)`` blurs with standard deviation sigma (three box-blur
    passes, no kernel-size cut-off), as MoCo v3's own loader and the official GOPro code do; at 224 px it
    is about 6x cheaper than torchvision's 23 x 23 convolution and runs single-threaded in PIL's C code.
    Tensor images keep torchvision's kernel of ``kernel_size``.
    """

    def forward(self, img):
        if not isinstance(img, Image.Image):
            return super().forward(img)
        sigma = self.get_params(self.sigma[0], self.sigma[1])
        return img.filter(ImageFilter.GaussianBlur(radius=sigma))


class SingleThreadCompose(Compose):
    """``Compose`` whose transforms run on one torch thread (the caller's thread count is restored)."""

    def __call__(self, img):
        threads = torch.get_num_threads()
        if threads == 1:
            return super().__call__(img)
        torch.set_num_threads(1)
        try:
            return super().__call__(img)
        finally:
            torch.set_num_threads(threads)


def _to_clip_tensor(mean, std) -> list:
    return [ToTensor(), Normalize(mean=mean, std=std)]


def _blur_kernel(size) -> int:
    """An odd Gaussian-blur kernel of about 10% of the image side (23 px at 224)."""
    return 2 * round(0.05 * max(size)) + 1


def build_mocov3_view(size, mean, std) -> Compose:
    """MoCo v3's first view (PIL's blur; a tensor input would use the kernel of ``_blur_kernel``)."""
    size = tuple(size)
    return SingleThreadCompose([
        RandomResizedCrop(size, scale=(0.08, 1.0)),
        RandomApply([ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)], p=0.8),
        RandomGrayscale(p=0.2),
        PILGaussianBlur(kernel_size=_blur_kernel(size), sigma=(0.1, 2.0)),
        RandomHorizontalFlip(),
        *_to_clip_tensor(mean, std),
    ])


def build_augmix_view(size, mean, std, severity: int = 1) -> Compose:
    """A random resized crop and flip, AugMix'ed (the official code's AugMixAugmenter, one view)."""
    return SingleThreadCompose([
        RandomResizedCrop(tuple(size)),
        RandomHorizontalFlip(),
        ReferenceAugMix(severity=severity),
        *_to_clip_tensor(mean, std),
    ])


def build_slip_view(size, mean, std) -> Compose:
    """One of SLIP's two SimCLR views (its colour jitter is not strengthened, its blur -- PIL's, as SLIP's own
    code -- is applied half the time)."""
    size = tuple(size)
    return SingleThreadCompose([
        RandomResizedCrop(size, scale=(0.08, 1.0)),
        RandomApply([ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)], p=0.8),
        RandomGrayscale(p=0.2),
        RandomApply([PILGaussianBlur(kernel_size=_blur_kernel(size), sigma=(0.1, 2.0))], p=0.5),
        RandomHorizontalFlip(),
        *_to_clip_tensor(mean, std),
    ])
