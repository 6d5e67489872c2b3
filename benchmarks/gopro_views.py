"""GOPro's augmented views: how they are made for a training batch, and what evaluation computes.

d1. Making the MoCo v3 and AugMix views of a training batch. Ours: in the DataLoader, from each decoded
    raw image (what ``DatasetWrapper`` does with one transform per view), then the batch is moved to the
    device. The official code: in the training step, each image of the already normalized device batch
    goes device -> CPU -> PIL, through the same two transforms, and back to the device. The same
    transform objects are used on both paths, so the difference is where their input comes from. The
    official AugMix also makes B views of every image (B^2 in all) and keeps those of image 0 (bug B4);
    here it makes one per image, which makes the official path cheaper than it is. Only the shapes can
    be compared (the views are random).
d2. Evaluation of a test batch: the original view only (ours) vs all three views with their prompts and
    projector outputs, of which only the original's logits are used (the official code, B5). The views'
    images are given as ready tensors, so the official path's per-image PIL work (d1) is not counted.
    The logits are checked equal before the timing.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor
from torchvision.transforms.functional import to_pil_image

from benchmarks.common import assert_same, build_clip, classnames, input_resolution, main, measure, resolve
from promptlearn.config import get_cfg_default
from promptlearn.data.transforms.views import build_augmix_view, build_mocov3_view
from promptlearn.modeling.backbones import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from trainers.gopro import VIEWS, GOPro, GOProModel

TEXT_BATCH_SIZE = 8192  # MODEL.TEXT_BATCH_SIZE's default
TRAIN_BATCH = 4  # GOPro's training batch size
#: (images, classes) of an evaluation batch: GOPro's test batch of 100 on a GPU
EVAL_SIZE = {"cpu": (16, 20), "cuda": (100, 100)}
RAW_ASPECT = (500, 375)  # a typical decoded photo (width, height) at 224: scaled with the input resolution


def _raw_images(count: int, resolution: int):
    width, height = (round(side * resolution / 224) for side in RAW_ASPECT)
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(count)]


def _views_case(resolution: int, device, repeats: int):
    size = (resolution, resolution)
    moco = build_mocov3_view(size, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
    augmix = build_augmix_view(size, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
    raw = _raw_images(TRAIN_BATCH, resolution)
    test_transform = Compose([Resize(resolution, interpolation=InterpolationMode.BICUBIC), CenterCrop(resolution),
                              ToTensor(), Normalize(CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)])
    original = torch.stack([test_transform(image) for image in raw]).to(device)  # the batch on the device

    def in_loader():
        views = [torch.stack([moco(image) for image in raw]), torch.stack([augmix(image) for image in raw])]
        return [view.to(device) for view in views]

    def round_trip():
        moco_views, augmix_views = [], []
        for image in original:
            pil = to_pil_image(image.cpu())  # a normalized tensor: wraps around in uint8 (B3)
            moco_views.append(moco(pil))
            augmix_views.append(augmix(pil))
        return [torch.stack(moco_views).to(device), torch.stack(augmix_views).to(device)]

    assert [v.shape for v in in_loader()] == [v.shape for v in round_trip()]
    width, height = raw[0].size
    detail = f"{TRAIN_BATCH} images, MoCo v3 + AugMix views at {resolution}px; raw images {width}x{height}"
    return measure("d1. GOPro views: from the raw image in the loader vs device->PIL->device per image", detail,
                   round_trip, in_loader, device, repeats)


def _evaluation_case(clip_model, device, precision: str, repeats: int):
    images, classes = EVAL_SIZE[device.type]
    cfg = get_cfg_default()
    GOPro.extend_cfg(cfg)  # the paper formulation's defaults
    cfg = cfg.TRAINER.GOPRO
    resolution = input_resolution(clip_model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GOProModel(clip_model, classnames(classes), cfg, list(VIEWS), TEXT_BATCH_SIZE).to(device).eval()
        batch = {view: torch.randn(images, 3, resolution, resolution).to(device, model.dtype) for view in VIEWS}

    def original_only():
        with torch.inference_mode():
            return model(batch["orig"])

    def all_views():
        with torch.inference_mode():
            encoded = {view: model.encode_images(batch[view], with_tokens=True) for view in VIEWS}
            text = model.class_prompt_features({view: tokens for view, (_, tokens) in encoded.items()})
            model.simproj(encoded["moco"][0])  # the projector output L_con would use
            return model.logits(model.classifier_features(encoded["orig"][0]), text["orig"])

    assert_same(all_views(), original_only(), precision, "GOPro evaluation of the original view only")
    detail = f"{images} images x {classes} classes"
    return measure("d2. GOPro evaluation: original view only vs all three views", detail,
                   all_views, original_only, device, repeats)


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5):
    device, backbone, precision = resolve(device, backbone, precision)
    clip_model = build_clip(backbone, device, precision)
    return [_views_case(input_resolution(clip_model), device, repeats),
            _evaluation_case(clip_model, device, precision, repeats)]


if __name__ == "__main__":
    main(run, __doc__.split("\n")[0])
