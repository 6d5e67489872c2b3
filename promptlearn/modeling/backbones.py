"""CLIP backbones by name: OpenAI's released checkpoints and tiny seeded-random ones for CPU tests.

``load_clip(name)`` returns OpenAI's unmodified ``clip.model.CLIP`` with fp16 weights, as
``clip.build_model`` leaves them; trainers call ``.float()`` for fp32/amp runs (see precision.py).
Weights are looked up at ``MODEL.BACKBONE.PATH`` if given, else ``$CLIP_WEIGHTS_DIR/<file>`` or
``~/.cache/clip/<file>`` (where ``clip.load`` keeps them). A missing file is downloaded when the
network allows; otherwise one error names the file, its URL and where to put it.
"""
import hashlib
import logging
import os
from dataclasses import dataclass, field

import torch

from ..errors import UserError
from .clip_compat import clip

logger = logging.getLogger(__name__)

CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
URL_ROOT = "https://openaipublic.azureedge.net/clip/models"


@dataclass(frozen=True)
class BackboneSpec:
    """One row of the backbone table."""

    name: str
    arch: str  # "vit" or "resnet"
    input_resolution: int
    file: str = ""  # checkpoint file name (OpenAI backbones)
    sha256: str = ""
    tiny_args: dict = field(default_factory=dict)  # clip.model.CLIP arguments (tiny backbones)
    seed: int = 0
    pretrained_on_shapes: bool = False  # tiny backbone pre-trained in-process on generated shape captions
    mean: tuple = CLIP_PIXEL_MEAN
    std: tuple = CLIP_PIXEL_STD

    @property
    def url(self) -> str:
        return f"{URL_ROOT}/{self.sha256}/{self.file}" if self.file else ""

    @property
    def is_tiny(self) -> bool:
        return bool(self.tiny_args)


def _openai(name, arch, res, file, sha256):
    return BackboneSpec(name=name, arch=arch, input_resolution=res, file=file, sha256=sha256)


def _tiny(name, arch, res, seed, pretrained_on_shapes=False, **args):
    text = dict(context_length=77, vocab_size=49408)
    return BackboneSpec(name=name, arch=arch, input_resolution=res, tiny_args={**text, **args, "image_resolution": res},
                        seed=seed, pretrained_on_shapes=pretrained_on_shapes)


BACKBONES = {spec.name: spec for spec in [
    _openai("RN50", "resnet", 224, "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"),
    _openai("RN101", "resnet", 224, "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599"),
    _openai("RN50x4", "resnet", 288, "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd"),
    _openai("RN50x16", "resnet", 384, "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa"),
    _openai("RN50x64", "resnet", 448, "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c"),
    _openai("ViT-B/32", "vit", 224, "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
    _openai("ViT-B/16", "vit", 224, "ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"),
    _openai("ViT-L/14", "vit", 224, "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"),
    _openai("ViT-L/14@336px", "vit", 336, "ViT-L-14-336px.pt",
            "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"),
    # Tiny backbones: OpenAI's architecture at toy sizes, seeded random weights, built in-process.
    _tiny("tiny-ViT", "vit", 32, seed=0, embed_dim=64, vision_layers=4, vision_width=128, vision_patch_size=8,
          transformer_width=64, transformer_heads=2, transformer_layers=4),
    _tiny("tiny-ViT-L", "vit", 48, seed=1, embed_dim=96, vision_layers=6, vision_width=192, vision_patch_size=16,
          transformer_width=96, transformer_heads=3, transformer_layers=5),
    # tiny-ViT's architecture with CLIP-style alignment on the demo's shape classes (see tiny_pretrain.py)
    _tiny("tiny-ViT-shapes", "vit", 32, seed=3, pretrained_on_shapes=True, embed_dim=64, vision_layers=4,
          vision_width=128, vision_patch_size=8, transformer_width=64, transformer_heads=2, transformer_layers=4),
    # ViT-B/16's exact architecture with seeded random weights: GPU checks and benchmarks at real size
    _tiny("random-ViT-B/16", "vit", 224, seed=0, embed_dim=512, vision_layers=12, vision_width=768,
          vision_patch_size=16, transformer_width=512, transformer_heads=8, transformer_layers=12),
    _tiny("tiny-RN", "resnet", 32, seed=2, embed_dim=64, vision_layers=(1, 1, 1, 1), vision_width=16,
          vision_patch_size=None, transformer_width=64, transformer_heads=2, transformer_layers=4),
]}


def get_backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise UserError(f'unknown CLIP backbone "{name}" (MODEL.BACKBONE.NAME). Available: {", ".join(BACKBONES)}')
    return BACKBONES[name]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_dir() -> str:
    return os.path.expanduser(os.environ.get("CLIP_WEIGHTS_DIR", "~/.cache/clip"))


def resolve_weights_path(spec: BackboneSpec, explicit_path: str = "") -> str:
    """The checkpoint file for ``spec``: the explicit path, or the cached file (downloaded if possible)."""
    if explicit_path:
        path = os.path.expanduser(explicit_path)
        if not os.path.isfile(path):
            raise UserError(f"CLIP weights file not found at MODEL.BACKBONE.PATH={explicit_path}. "
                            f"Download {spec.url} there, or clear the key to use {weights_dir()}/{spec.file}.")
        return path
    target = os.path.join(weights_dir(), spec.file)
    if os.path.isfile(target):
        if _sha256(target) != spec.sha256:
            raise UserError(f"{target} exists but its SHA256 is not {spec.sha256}: the file is incomplete or "
                            f"corrupt. Delete it and download {spec.url} again.")
        return target
    try:
        return clip.clip._download(spec.url, weights_dir())
    except Exception as err:  # offline, proxy, disk: one clear message instead of a traceback
        partial = os.path.join(weights_dir(), spec.file)
        if os.path.exists(partial):
            os.remove(partial)
        raise UserError(f"CLIP weights for {spec.name} not found: {target} is missing and could not be downloaded "
                        f"({type(err).__name__}). Download {spec.url} and put it at {target} "
                        "(or set CLIP_WEIGHTS_DIR to its folder, or MODEL.BACKBONE.PATH to the file).") from None


def _read_state_dict(path: str) -> dict:
    try:
        return torch.jit.load(path, map_location="cpu").eval().state_dict()
    except RuntimeError:
        pass
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"cannot read CLIP weights from {path} ({type(err).__name__}: {err}); "
                        "expected OpenAI's TorchScript .pt file or a state dict.") from None
    if isinstance(state_dict, dict) and "state_dict" in state_dict:
        state_dict = state_dict["state_dict"]
    return state_dict


def build_tiny_clip(spec: BackboneSpec) -> torch.nn.Module:
    """OpenAI's CLIP at toy sizes with weights from ``spec.seed``; global RNG state is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = clip.model.CLIP(**spec.tiny_args)
    clip.model.convert_weights(model)
    return model.eval()


def load_clip(name: str, path: str = "") -> torch.nn.Module:
    """Load backbone ``name`` on the CPU, in eval mode, with CLIP's fp16 weights."""
    spec = get_backbone_spec(name)
    if spec.pretrained_on_shapes:
        from .tiny_pretrain import load_or_pretrain

        return load_or_pretrain(name, lambda: build_tiny_clip(spec), spec.input_resolution, spec.seed)
    if spec.is_tiny:
        logger.info(f"Building CLIP backbone {name} with seeded random weights (no checkpoint; for tests)")
        return build_tiny_clip(spec)
    weights = resolve_weights_path(spec, path)
    logger.info(f"Loading CLIP ({name}) from {weights}")
    try:
        model = clip.build_model(_read_state_dict(weights))
    except (KeyError, RuntimeError) as err:
        raise UserError(f"{weights} is not a CLIP {name} checkpoint ({type(err).__name__}: {err})") from None
    return model.eval()
