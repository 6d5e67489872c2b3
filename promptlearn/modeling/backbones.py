"""CLIP backbones by name: OpenAI's released checkpoints and tiny seeded-random ones for CPU tests.

``load_clip(name)`` returns OpenAI's unmodified ``clip.model.CLIP`` in eval mode on the CPU, exactly as
``clip.model.build_model`` leaves it (fp16 weights where ``convert_weights`` puts them); trainers call
``.float()`` for fp32/amp runs (see precision.py). A backbone is either *file-backed* (OpenAI's
checkpoints, or one registered with a file name) or built in-process from seeded random weights.

A file-backed backbone's weights are read from ``MODEL.BACKBONE.PATH`` when it is set, else from
``<folder>/<file>`` where the folder is ``$CLIP_WEIGHTS_DIR`` when set, else ``~/.cache/clip`` (where
``clip.load`` keeps them); a file found in that folder must have the published SHA256. A missing file is
downloaded there when the network allows. The file may be OpenAI's TorchScript archive or a state dict
(fp16 or fp32, bare or as ``{"state_dict": ...}``); the model is built from it by OpenAI's own
``build_model``, so it equals what ``clip.load(path, jit=False)`` returns (which casts to fp32 on a
CPU). The file's architecture must be the one the name stands for: a different image tower is refused,
a text tower of another depth only warned about (small test checkpoints).

Every problem is a :class:`UserError` of one line. ``prepare_clip`` runs the whole check (and the
load) before a run writes anything; ``load_clip`` then returns that model.
"""
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch

from ..checksums import file_sha256
from ..errors import UserError
from .clip_compat import clip

logger = logging.getLogger(__name__)

CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
URL_ROOT = "https://openaipublic.azureedge.net/clip/models"
#: weights files that ship with this package (mini-ViT, written by ``python -m promptlearn.demo.pretrain``)
SHIPPED_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo", "weights")
MINI_VIT_SHA256 = "0329743976aec216af3f1b35043a1cbdb3243b52e182929af253c6f734b94abf"
#: keys of OpenAI's TorchScript archives that are no weights (``build_model`` drops them)
NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size")
#: architecture fields of the image tower (a mismatch is refused) and of the text tower
VISION_FIELDS = ("vision_kind", "image_resolution", "vision_layers", "vision_width", "vision_patch_size")
TEXT_FIELDS = ("embed_dim", "context_length", "vocab_size", "transformer_width", "transformer_heads",
               "transformer_layers")


@dataclass(frozen=True)
class BackboneSpec:
    """One row of the backbone table. ``clip_args`` are the arguments of ``clip.model.CLIP``: the
    architecture, which a file-backed backbone's checkpoint must have."""

    name: str
    arch: str  # "vit" or "resnet"
    input_resolution: int
    clip_args: dict = field(default_factory=dict)
    file: str = ""  # checkpoint file name: a file-backed backbone
    sha256: str = ""  # of the file, checked when it is found in the weights folder ("" = not checked)
    url: str = ""  # where a missing file is downloaded from
    seed: int = 0  # in-process backbones: the seed of their random weights
    shipped_dir: str = ""  # a folder of this package holding the file (looked in after the weights folder)
    regenerate: str = ""  # the command that writes the file, for backbones of this project
    mean: tuple = CLIP_PIXEL_MEAN
    std: tuple = CLIP_PIXEL_STD

    @property
    def is_tiny(self) -> bool:
        """Built in-process with seeded random weights (no checkpoint file)."""
        return not self.file

    @property
    def how_to_get(self) -> str:
        """What to do for a good copy of the file, as the end of a sentence ("Delete it and <this>.")."""
        if self.url:
            return f"download {self.url}"
        if self.regenerate:
            return f"restore {self.file} (git checkout) or write it with `{self.regenerate}`"
        return f"get {self.file}"

    @property
    def how_to_get_sentence(self) -> str:
        return self.how_to_get[0].upper() + self.how_to_get[1:]


_TEXT = dict(context_length=77, vocab_size=49408)


def _vit(embed, res, layers, width, patch, text_width, text_layers=12):
    return dict(embed_dim=embed, image_resolution=res, vision_layers=layers, vision_width=width,
                vision_patch_size=patch, transformer_width=text_width, transformer_heads=text_width // 64,
                transformer_layers=text_layers, **_TEXT)


def _resnet(embed, res, blocks, width, text_width):
    return dict(embed_dim=embed, image_resolution=res, vision_layers=blocks, vision_width=width,
                vision_patch_size=None, transformer_width=text_width, transformer_heads=text_width // 64,
                transformer_layers=12, **_TEXT)


def _openai(name, file, sha256, args):
    arch = "resnet" if args["vision_patch_size"] is None else "vit"
    return BackboneSpec(name=name, arch=arch, input_resolution=args["image_resolution"], clip_args=args, file=file,
                        sha256=sha256, url=f"{URL_ROOT}/{sha256}/{file}")


def _tiny(name, arch, res, seed, **args):
    args = {**_TEXT, **args, "image_resolution": res}
    return BackboneSpec(name=name, arch=arch, input_resolution=res, clip_args=args, seed=seed)


BACKBONES = {spec.name: spec for spec in [
    # OpenAI's released checkpoints, with the architecture build_model reads from each file
    _openai("RN50", "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
            _resnet(1024, 224, (3, 4, 6, 3), 64, 512)),
    _openai("RN101", "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599",
            _resnet(512, 224, (3, 4, 23, 3), 64, 512)),
    _openai("RN50x4", "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd",
            _resnet(640, 288, (4, 6, 10, 6), 80, 640)),
    _openai("RN50x16", "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa",
            _resnet(768, 384, (6, 8, 18, 8), 96, 768)),
    _openai("RN50x64", "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c",
            _resnet(1024, 448, (3, 15, 36, 10), 128, 1024)),
    _openai("ViT-B/32", "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
            _vit(512, 224, 12, 768, 32, 512)),
    _openai("ViT-B/16", "ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
            _vit(512, 224, 12, 768, 16, 512)),
    _openai("ViT-L/14", "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
            _vit(768, 224, 24, 1024, 14, 768)),
    _openai("ViT-L/14@336px", "ViT-L-14-336px.pt", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
            _vit(768, 336, 24, 1024, 14, 768)),
    # Tiny backbones: OpenAI's architecture at toy sizes, seeded random weights, built in-process.
    _tiny("tiny-ViT", "vit", 32, seed=0, embed_dim=64, vision_layers=4, vision_width=128, vision_patch_size=8,
          transformer_width=64, transformer_heads=2, transformer_layers=4),
    _tiny("tiny-ViT-L", "vit", 48, seed=1, embed_dim=96, vision_layers=6, vision_width=192, vision_patch_size=16,
          transformer_width=96, transformer_heads=3, transformer_layers=5),
    # A tiny CLIP pre-trained by this project on a generated image-caption corpus (promptlearn/demo/), shipped
    # as an OpenAI-format state dict: the demo's and Mini-B2N's backbone
    BackboneSpec(name="mini-ViT", arch="vit", input_resolution=32,
                 clip_args=_vit(128, 32, 4, 128, 8, 64, text_layers=4),
                 file="mini-ViT.pt", sha256=MINI_VIT_SHA256, shipped_dir=SHIPPED_WEIGHTS,
                 regenerate="python -m promptlearn.demo.pretrain"),
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


def architecture_of(model: torch.nn.Module) -> dict:
    """The architecture of a built CLIP, in ``clip.model.CLIP``'s argument names (plus ``vision_kind``)."""
    visual = model.visual
    if isinstance(visual, clip.model.VisionTransformer):
        vision = dict(vision_kind="vit", vision_layers=visual.transformer.layers,
                      vision_width=visual.conv1.out_channels, vision_patch_size=visual.conv1.kernel_size[0])
    else:
        vision = dict(vision_kind="resnet", vision_layers=tuple(len(getattr(visual, f"layer{i}")) for i in range(1, 5)),
                      vision_width=visual.layer1[0].conv1.out_channels, vision_patch_size=None)
    return dict(**vision, image_resolution=visual.input_resolution, embed_dim=model.text_projection.shape[1],
                context_length=model.context_length, vocab_size=model.vocab_size,
                transformer_width=model.transformer.width,
                transformer_heads=model.transformer.resblocks[0].attn.num_heads,
                transformer_layers=model.transformer.layers)


def expected_architecture(spec: BackboneSpec) -> dict:
    args = dict(spec.clip_args)
    args["vision_kind"] = spec.arch
    if spec.arch == "resnet":
        args["vision_layers"] = tuple(args["vision_layers"])
    return args


def describe_architecture(arch: dict) -> str:
    if arch["vision_kind"] == "vit":
        vision = (f"ViT image tower ({arch['vision_layers']} layers of width {arch['vision_width']}, patch "
                  f"{arch['vision_patch_size']}, {arch['image_resolution']} px)")
    else:
        vision = (f"ResNet image tower (blocks {arch['vision_layers']}, width {arch['vision_width']}, "
                  f"{arch['image_resolution']} px)")
    return (f"{vision}, {arch['transformer_layers']}-layer text tower of width {arch['transformer_width']}, "
            f"embedding {arch['embed_dim']}")


# ------------------------------------------------------------------------------------------- finding the file

def weights_dir() -> str:
    """The folder of the checkpoint files: ``$CLIP_WEIGHTS_DIR`` when set, else ``~/.cache/clip``."""
    return os.path.expanduser(os.environ.get("CLIP_WEIGHTS_DIR") or "~/.cache/clip")


def resolve_weights_path(spec: BackboneSpec, explicit_path: str = "") -> str:
    """The checkpoint file for ``spec``: the explicit path, or the file in the weights folder, else in the
    package folder it ships in (checked against its SHA256; downloaded into the weights folder when missing
    and the network allows)."""
    if explicit_path:
        path = os.path.expanduser(explicit_path)
        if not os.path.isfile(path):
            raise UserError(f"CLIP weights file not found at MODEL.BACKBONE.PATH={explicit_path}: "
                            f"{spec.how_to_get} there, or clear the key to use {weights_dir()}/{spec.file}.")
        return path
    target = os.path.join(weights_dir(), spec.file)
    folders = [weights_dir()] + ([spec.shipped_dir] if spec.shipped_dir else [])
    for found in (os.path.join(folder, spec.file) for folder in folders):
        if os.path.isfile(found):
            digest = file_sha256(found) if spec.sha256 else ""
            if digest != spec.sha256:
                raise UserError(f"{found} is not the published {spec.file}: its SHA256 is {digest}, expected "
                                f"{spec.sha256} (an incomplete download, a corrupt copy or another file under that "
                                f"name). Delete it and {spec.how_to_get} again (or set MODEL.BACKBONE.PATH to use "
                                "a file of your own).")
            return found
    if not spec.url:
        looked = " and ".join(os.path.join(folder, spec.file) for folder in folders)
        raise UserError(f"CLIP weights for {spec.name} not found: {looked} {'are' if len(folders) > 1 else 'is'} "
                        f"missing. {spec.how_to_get_sentence} (or set CLIP_WEIGHTS_DIR to the folder of the file, "
                        "or MODEL.BACKBONE.PATH to the file).")
    try:
        return clip.clip._download(spec.url, weights_dir())
    except Exception as err:  # offline, proxy, disk: one clear message instead of a traceback
        if os.path.exists(target):
            os.remove(target)
        raise UserError(f"CLIP weights for {spec.name} not found: {target} is missing and could not be downloaded "
                        f"({type(err).__name__}). Download {spec.url} and put it at {target} "
                        "(or set CLIP_WEIGHTS_DIR to its folder, or MODEL.BACKBONE.PATH to the file).") from None


# ------------------------------------------------------------------------------------------- reading the file

def _read_state_dict(path: str, spec: BackboneSpec) -> dict:
    """The weights in ``path``: what ``clip.load`` reads (TorchScript archive, else a state dict), or a state
    dict wrapped as ``{"state_dict": ...}``."""
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is no news to the user
            warnings.simplefilter("ignore")
            return torch.jit.load(path, map_location="cpu").eval().state_dict()
    except Exception:
        pass
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"cannot read CLIP weights from {path}: it is neither a TorchScript archive nor a file of "
                        f"tensors that torch.load reads safely ({type(err).__name__}; truncated or corrupt?). "
                        f"{spec.how_to_get_sentence} again.") from None
    if isinstance(state_dict, dict) and isinstance(state_dict.get("state_dict"), dict):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, dict) or not all(torch.is_tensor(v) for v in state_dict.values()):
        raise UserError(f"{path} is not a CLIP checkpoint: it holds no state dict of tensors "
                        f"({type(state_dict).__name__}). Set MODEL.BACKBONE.PATH to OpenAI's {spec.file or 'file'}.")
    return state_dict


def _missing_clip_keys(state_dict: dict) -> List[str]:
    required = ["text_projection", "positional_embedding", "token_embedding.weight", "ln_final.weight"]
    if "visual.proj" in state_dict:
        required += ["visual.conv1.weight", "visual.positional_embedding"]
    else:
        required += ["visual.layer1.0.conv1.weight", "visual.attnpool.positional_embedding"]
    return [key for key in required if key not in state_dict]


def _not_clip_message(path: str, state_dict: dict, missing: List[str]) -> str:
    keys = sorted(state_dict)
    shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    hint = ""
    if any(key.rsplit(".", 1)[-1] in ("ctx", "token_prefix", "token_suffix") for key in keys):
        hint = (" It looks like a training checkpoint of a prompt learner: give its run folder as --model-dir "
                "(with --eval-only), and MODEL.BACKBONE.PATH the CLIP weights it was trained on.")
    return (f"{path} is not a CLIP checkpoint: it lacks CLIP's {', '.join(missing)} (it holds {len(keys)} "
            f"tensors: {shown or 'none'}).{hint}")


def _build_from_file(spec: BackboneSpec, path: str) -> Tuple[torch.nn.Module, List[str]]:
    """OpenAI's ``build_model`` of the file's weights, checked against ``spec``; (model, warnings to log)."""
    state_dict = _read_state_dict(path, spec)
    missing = _missing_clip_keys(state_dict)
    if missing:
        raise UserError(_not_clip_message(path, state_dict, missing))
    try:
        model = clip.model.build_model(state_dict)
    except Exception as err:  # shapes that do not fit together, stray keys: one line, no traceback
        detail = " ".join(str(err).split())
        raise UserError(f"{path} is not a complete CLIP checkpoint: OpenAI's build_model cannot load it "
                        f"({type(err).__name__}: {detail[:300]}). {spec.how_to_get_sentence} again.") from None
    found, expected = architecture_of(model), expected_architecture(spec)
    if any(found[key] != expected[key] for key in VISION_FIELDS + TEXT_FIELDS if key != "transformer_layers"):
        raise UserError(f"{path} is not a {spec.name} checkpoint: it has a {describe_architecture(found)}; "
                        f"{spec.name} has a {describe_architecture(expected)}. Set MODEL.BACKBONE.NAME to the "
                        f"file's backbone, or MODEL.BACKBONE.PATH to a {spec.name} file.")
    notes = []
    if found["transformer_layers"] != expected["transformer_layers"]:
        notes.append(f"WARNING: {path} has a {found['transformer_layers']}-layer text tower where {spec.name} has "
                     f"{expected['transformer_layers']} (a small test checkpoint?); it is used as it is")
    return model.eval(), notes


# ------------------------------------------------------------------------------------------- building the model

def build_tiny_clip(spec: BackboneSpec) -> torch.nn.Module:
    """OpenAI's CLIP at ``spec``'s sizes with weights from ``spec.seed``, fp16 as ``build_model`` leaves a
    checkpoint; the global RNG state is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = clip.model.CLIP(**spec.clip_args)
    clip.model.convert_weights(model)
    return model.eval()


_prepared = {}  # (name, path) -> (weights file, model, warnings): prepare_clip's model for load_clip


def prepare_clip(name: str, path: str = "") -> None:
    """Find, read and check the weights of a file-backed backbone now (an unknown name or an in-process
    backbone is left to ``load_clip``); the next ``load_clip(name, path)`` returns the model."""
    spec = BACKBONES.get(name)
    if spec is None or spec.is_tiny:
        return
    _prepared.clear()
    weights = resolve_weights_path(spec, path)
    _prepared[(name, path)] = (weights, *_build_from_file(spec, weights))


def load_clip(name: str, path: str = "") -> torch.nn.Module:
    """Backbone ``name`` on the CPU, in eval mode, with CLIP's fp16 weights (``path``: MODEL.BACKBONE.PATH)."""
    spec = get_backbone_spec(name)
    if spec.is_tiny:
        logger.info(f"Building CLIP backbone {name} with seeded random weights (no checkpoint; for tests)")
        return build_tiny_clip(spec)
    prepared: Optional[tuple] = _prepared.pop((name, path), None)
    if prepared is None:
        weights = resolve_weights_path(spec, path)
        prepared = (weights, *_build_from_file(spec, weights))
    weights, model, notes = prepared
    logger.info(f"Loading CLIP ({name}) from {weights}")
    for note in notes:
        logger.warning(note)
    return model
