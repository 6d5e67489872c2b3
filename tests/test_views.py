"""GOPro's view transforms: the MoCo v3 view's blur is PIL's Gaussian blur (what MoCo v3's and the official GOPro
code run), equivalent to torchvision's convolution at the same sigma; views run on one torch thread and leave the
caller's thread count as it was."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision.transforms import functional as TF

from promptlearn.data.transforms.views import PILGaussianBlur, SingleThreadCompose, build_augmix_view, build_mocov3_view
from promptlearn.modeling.backbones import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from promptlearn.utils import set_random_seed


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.float64)


def profile_std(image: Image.Image) -> float:
    """Standard deviation of the horizontal profile of a blurred vertical line (the blur's sigma)."""
    row = pixels(image)[image.height // 2, :, 0]
    weights = row / row.sum()
    x = np.arange(row.size)
    mean = (weights * x).sum()
    return float(np.sqrt((weights * (x - mean) ** 2).sum()))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_pil_blur_has_the_drawn_sigma_and_matches_torchvisions_kernel(sigma):
    line = np.zeros((48, 48, 3), np.uint8)
    line[:, 24] = 255
    blurred = Image.fromarray(line).filter(ImageFilter.GaussianBlur(radius=sigma))
    assert profile_std(blurred) == pytest.approx(sigma, rel=0.03)  # PIL's radius is the standard deviation

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    inner = slice(12, -12)  # at the borders PIL repeats the edge pixel where torchvision reflects
    pil = pixels(noise.filter(ImageFilter.GaussianBlur(radius=sigma)))[inner, inner]
    torchvision = pixels(TF.gaussian_blur(noise, kernel_size=23, sigma=sigma))[inner, inner]  # MoCo's 23 px at 224
    off_by_half = pixels(TF.gaussian_blur(noise, kernel_size=23, sigma=1.5 * sigma))[inner, inner]
    difference = np.abs(pil - torchvision).mean()
    assert difference < 1.0  # grey levels, of 255
    assert difference < 0.2 * np.abs(off_by_half - torchvision).mean()  # far closer than a 1.5x other sigma


def test_blur_draws_sigma_from_its_range_with_torchs_generator(monkeypatch):
    blur = PILGaussianBlur(kernel_size=23, sigma=(0.1, 2.0))
    drawn = []
    monkeypatch.setattr(ImageFilter, "GaussianBlur", lambda radius: drawn.append(radius) or ImageFilter.BLUR)
    image = Image.new("RGB", (16, 16))
    torch.manual_seed(0)
    for _ in range(200):
        blur(image)
    assert 0.1 <= min(drawn) < 0.2 and 1.9 < max(drawn) <= 2.0
    torch.manual_seed(0)
    again = []
    monkeypatch.setattr(ImageFilter, "GaussianBlur", lambda radius: again.append(radius) or ImageFilter.BLUR)
    for _ in range(200):
        blur(image)
    assert again == drawn  # seeded like the other view transforms


def test_mocov3_view_blurs_with_pil(monkeypatch):
    view = build_mocov3_view((32, 32), CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
    radii = []
    original = ImageFilter.GaussianBlur
    monkeypatch.setattr(ImageFilter, "GaussianBlur", lambda radius: radii.append(radius) or original(radius))
    set_random_seed(0)
    view(Image.new("RGB", (40, 40), (120, 60, 30)))
    assert len(radii) == 1 and 0.1 <= radii[0] <= 2.0  # always applied, sigma from MoCo v3's range


def test_tensor_images_keep_torchvisions_blur():
    blur = PILGaussianBlur(kernel_size=5, sigma=(1.0, 1.0))
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(blur(image), TF.gaussian_blur(image, kernel_size=5, sigma=1.0))


@pytest.mark.parametrize("make_view", [build_mocov3_view, build_augmix_view])
def test_views_run_on_one_thread_and_restore_the_callers(make_view, monkeypatch):
    view = make_view((32, 32), CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
    assert isinstance(view, SingleThreadCompose)
    seen = []
    view.transforms.insert(0, lambda img: seen.append(torch.get_num_threads()) or img)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        set_random_seed(0)
        out = view(Image.new("RGB", (40, 40), (120, 60, 30)))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert out.shape == (3, 32, 32)
