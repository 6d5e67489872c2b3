"""Transforms built from INPUT.TRANSFORMS in Dassl's fixed order (CLIP mean/std, bicubic), the test
transform (shorter side resized, then a center crop), and the multi-view DatasetWrapper."""
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import (
    CenterCrop,
    ColorJitter,
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

from promptlearn.config import get_cfg_default
from promptlearn.data import data_manager
from promptlearn.data.data_manager import DatasetWrapper
from promptlearn.data.datasets import Datum
from promptlearn.data.transforms import build_transform
from promptlearn.data.transforms.transforms import Cutout, GaussianNoise, InstanceNormalization, Random2DTranslation
from promptlearn.errors import UserError

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_cfg(transforms, size=(224, 224)):
    """The reference configs' INPUT settings."""
    cfg = get_cfg_default()
    cfg.INPUT.SIZE = size
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN = CLIP_MEAN
    cfg.INPUT.PIXEL_STD = CLIP_STD
    cfg.INPUT.TRANSFORMS = transforms
    return cfg


def steps(compose):
    return [type(t) for t in compose.transforms]


def test_reference_training_transform():
    tfm = build_transform(clip_cfg(["normalize", "random_flip", "random_resized_crop"]), is_train=True)
    assert steps(tfm) == [RandomResizedCrop, RandomHorizontalFlip, ToTensor, Normalize]
    crop, flip, _, norm = tfm.transforms
    assert crop.size == (224, 224) and crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert crop.interpolation == InterpolationMode.BICUBIC
    assert flip.p == 0.5
    assert list(norm.mean) == CLIP_MEAN and list(norm.std) == CLIP_STD


def test_full_chain_follows_dassls_order():
    names = ["instance_norm", "gaussian_noise", "normalize", "cutout", "gaussian_blur", "randomgrayscale",
             "colorjitter", "randaugment", "random_flip", "center_crop", "random_resized_crop", "random_crop",
             "random_translation"]
    tfm = build_transform(clip_cfg(names), is_train=True)
    assert steps(tfm) == [Random2DTranslation, RandomCrop, RandomResizedCrop, CenterCrop, RandomHorizontalFlip,
                          RandAugment, ColorJitter, RandomGrayscale, RandomApply, ToTensor, Cutout, Normalize,
                          GaussianNoise, InstanceNormalization]
    cfg = clip_cfg(names)
    by_type = {type(t): t for t in tfm.transforms}
    assert by_type[RandomCrop].padding == cfg.INPUT.CROP_PADDING == 4
    assert by_type[RandomGrayscale].p == cfg.INPUT.RGS_P
    assert by_type[RandomApply].p == cfg.INPUT.GB_P and by_type[RandomApply].transforms[0].kernel_size == (21, 21)
    assert (by_type[Cutout].n_holes, by_type[Cutout].length) == (1, 16)
    assert (by_type[GaussianNoise].mean, by_type[GaussianNoise].std) == (0.0, 0.15)
    assert (by_type[RandAugment].num_ops, by_type[RandAugment].magnitude) == (2, 10)
    # the chain runs on a real image
    out = tfm(Image.new("RGB", (300, 250), (120, 30, 200)))
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32


def test_resize_only_without_a_crop():
    tfm = build_transform(clip_cfg(["random_flip", "normalize"]), is_train=True)
    assert steps(tfm) == [Resize, RandomHorizontalFlip, ToTensor, Normalize]
    assert tuple(tfm.transforms[0].size) == (224, 224)
    assert steps(build_transform(clip_cfg(["random_crop"]), is_train=True)) == [RandomCrop, ToTensor]


def test_test_transform_is_resize_shorter_side_then_center_crop():
    cfg = clip_cfg(["random_resized_crop", "random_flip", "normalize"])
    tfm = build_transform(cfg, is_train=False)
    assert steps(tfm) == [Resize, CenterCrop, ToTensor, Normalize]
    resize, crop = tfm.transforms[:2]
    assert resize.size == 224  # an int: the shorter side, aspect ratio kept
    assert resize.interpolation == InterpolationMode.BICUBIC
    assert tuple(crop.size) == (224, 224)


@pytest.mark.parametrize("image_size", [(60, 40), (40, 60), (32, 32), (20, 25)])
def test_test_transform_output(image_size):
    cfg = clip_cfg(["normalize"], size=(32, 32))
    tfm = build_transform(cfg, is_train=False)
    generator = torch.Generator().manual_seed(0)
    pixels = (torch.rand(image_size[1], image_size[0], 3, generator=generator) * 255).to(torch.uint8)
    image = Image.fromarray(pixels.numpy())
    w, h = image_size
    short = min(w, h)
    new_size = (round(h * 32 / short), round(w * 32 / short))  # (height, width), shorter side 32
    manual = image.resize((new_size[1], new_size[0]), Image.BICUBIC)
    left, top = round((new_size[1] - 32) / 2.0), round((new_size[0] - 32) / 2.0)
    manual = manual.crop((left, top, left + 32, top + 32))
    expected = TF.normalize(TF.to_tensor(manual), CLIP_MEAN, CLIP_STD)
    out = tfm(image)
    assert out.shape == (3, 32, 32)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_no_transform_and_bad_names():
    cfg = clip_cfg(["normalize"])
    cfg.INPUT.NO_TRANSFORM = True
    assert build_transform(cfg, is_train=True) is None and build_transform(cfg, is_train=False) is None
    with pytest.raises(UserError, match="random_rotate"):
        build_transform(clip_cfg(["random_flip", "random_rotate"]), is_train=True)
    cfg = clip_cfg(["normalize"])
    cfg.INPUT.INTERPOLATION = "lanczos"
    with pytest.raises(UserError, match="INTERPOLATION"):
        build_transform(cfg, is_train=False)


# ---------------------------------------------------------------- DatasetWrapper


@pytest.fixture
def images(tmp_path):
    items = []
    for label in range(2):
        path = tmp_path / f"img{label}.png"
        y, x = torch.meshgrid(torch.arange(40), torch.arange(48), indexing="ij")
        pixels = torch.stack([x * 5, y * 6, (x + y + 100 * label) % 256], dim=-1).to(torch.uint8)  # no two crops alike
        Image.fromarray(pixels.numpy()).save(path)
        items.append(Datum(impath=str(path), label=label, domain=label, classname=f"c{label}"))
    return items


class Recorder:
    """A transform that records the image objects it was given and tags its output."""

    def __init__(self, tag):
        self.tag = tag
        self.seen = []

    def __call__(self, img):
        self.seen.append(img)
        return torch.full((3, 4, 4), float(self.tag))


def test_list_of_transforms_gives_views_of_one_decoded_image(images, monkeypatch):
    reads = []
    original = data_manager.read_image

    def counting_read(path):
        reads.append(path)
        return original(path)

    monkeypatch.setattr(data_manager, "read_image", counting_read)
    recorders = [Recorder(1), Recorder(2), Recorder(3)]
    wrapper = DatasetWrapper(clip_cfg(["normalize"], size=(32, 32)), images, transform=recorders, is_train=True)
    out = wrapper[1]
    assert reads == [images[1].impath]
    assert set(out) == {"img", "img2", "img3", "label", "domain", "impath", "index"}
    assert [out[k][0, 0, 0].item() for k in ("img", "img2", "img3")] == [1.0, 2.0, 3.0]
    assert recorders[0].seen[0] is recorders[1].seen[0] is recorders[2].seen[0]
    assert recorders[0].seen[0].mode == "RGB"
    assert (out["label"], out["domain"], out["impath"], out["index"]) == (1, 1, images[1].impath, 1)


def test_k_transforms_gives_k_random_views_in_training_only(images):
    cfg = clip_cfg(["random_resized_crop", "random_flip", "normalize"], size=(32, 32))
    cfg.DATALOADER.K_TRANSFORMS = 3
    cfg.DATALOADER.RETURN_IMG0 = True
    tfm = build_transform(cfg, is_train=True)
    torch.manual_seed(0)
    train_item = DatasetWrapper(cfg, images, transform=tfm, is_train=True)[0]
    assert isinstance(train_item["img"], list) and len(train_item["img"]) == 3
    assert all(view.shape == (3, 32, 32) for view in train_item["img"])
    assert not torch.equal(train_item["img"][0], train_item["img"][1])
    assert train_item["img0"].shape == (3, 32, 32)  # resized, not augmented
    test_item = DatasetWrapper(cfg, images, transform=build_transform(cfg, is_train=False), is_train=False)[0]
    assert isinstance(test_item["img"], torch.Tensor) and test_item["img"].shape == (3, 32, 32)

    multi = DatasetWrapper(cfg, images, transform=[tfm, tfm], is_train=True)[0]
    assert len(multi["img"]) == len(multi["img2"]) == 3


def test_default_collation(images):
    cfg = clip_cfg(["normalize"], size=(32, 32))
    loader = DataLoader(DatasetWrapper(cfg, images, transform=build_transform(cfg, is_train=False)), batch_size=2)
    batch = next(iter(loader))
    assert batch["img"].shape == (2, 3, 32, 32) and batch["img"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [0, 1]
    assert batch["impath"] == [d.impath for d in images]
