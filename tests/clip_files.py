"""CLIP checkpoint files as users have them, written by the tests: OpenAI's released form (a TorchScript
archive of a traced fp16 CLIP, with the three non-weight entries of the released files) and state dicts
(fp16 as ``build_model`` leaves a model, fp32 as a model is before ``convert_weights``, bare or wrapped as
``{"state_dict": ...}``); and backbone specs registered for them with their own file names and hashes."""
import copy
import hashlib
import os
import warnings

import torch

from promptlearn.modeling.backbones import NON_WEIGHT_KEYS, BackboneSpec
from promptlearn.modeling.clip_compat import clip

# OpenAI's architecture at toy size; heads follow OpenAI's rule (width // 64), which build_model assumes
TEST_ARGS = dict(embed_dim=64, image_resolution=32, vision_layers=4, vision_width=128, vision_patch_size=8,
                 context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=4)
TEST_RN_ARGS = dict(embed_dim=64, image_resolution=32, vision_layers=(1, 1, 1, 1), vision_width=16,
                    vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=64,
                    transformer_heads=1, transformer_layers=2)
# ViT-B/32's image tower and text width with a 2-layer text tower (a file of about 280 MB)
B32_SMALL_TEXT_ARGS = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                           vision_patch_size=32, context_length=77, vocab_size=49408, transformer_width=512,
                           transformer_heads=8, transformer_layers=2)
FORMS = ("torchscript", "fp16", "fp32", "wrapped")
SEED = 11


def fp32_clip(args: dict, seed: int = SEED) -> torch.nn.Module:
    """A freshly initialized CLIP in fp32 (the values before ``convert_weights`` rounds them)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return clip.model.CLIP(**args).eval()


def fp16_clip(args: dict, seed: int = SEED) -> torch.nn.Module:
    model = fp32_clip(args, seed)
    clip.model.convert_weights(model)
    return model


def save_torchscript(model: torch.nn.Module, path: str) -> None:
    """``torch.jit.save`` of the traced model, as OpenAI released CLIP: fp16 weights plus the entries
    ``input_resolution``, ``context_length`` and ``vocab_size`` that ``build_model`` drops."""
    model = copy.deepcopy(model)
    values = {"input_resolution": model.visual.input_resolution, "context_length": model.context_length,
              "vocab_size": model.vocab_size}
    for key in NON_WEIGHT_KEYS:
        model.__dict__.pop(key, None)  # plain attributes of clip.model.CLIP, buffers in the released files
        model.register_buffer(key, torch.tensor(values[key]))
    res = values["input_resolution"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.zeros(1, 3, res, res), clip.tokenize(["a photo of a cat."])),
                                 check_trace=False)
        torch.jit.save(traced, path)


def write_checkpoint(form: str, path: str, args: dict = TEST_ARGS, seed: int = SEED) -> str:
    """Write the CLIP of ``args`` and ``seed`` in ``form`` (one of FORMS) to ``path``; returns ``path``."""
    if form == "torchscript":
        save_torchscript(fp16_clip(args, seed), path)
    elif form == "fp16":
        torch.save(fp16_clip(args, seed).state_dict(), path)
    elif form == "fp32":
        torch.save(fp32_clip(args, seed).state_dict(), path)
    elif form == "wrapped":
        torch.save({"state_dict": fp16_clip(args, seed).state_dict(), "epoch": 32}, path)
    else:
        raise ValueError(form)
    return path


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def file_spec(name: str, path: str, args: dict = TEST_ARGS, with_hash: bool = True) -> BackboneSpec:
    """A file-backed backbone named ``name`` whose file is ``basename(path)``, with that file's hash."""
    arch = "resnet" if args["vision_patch_size"] is None else "vit"
    return BackboneSpec(name=name, arch=arch, input_resolution=args["image_resolution"], clip_args=dict(args),
                        file=os.path.basename(path), sha256=sha256(path) if with_hash else "")


def random_spec(name: str, args: dict = TEST_ARGS, seed: int = SEED) -> BackboneSpec:
    """The same weights as ``write_checkpoint(..., args, seed)``, built in-process (no file)."""
    arch = "resnet" if args["vision_patch_size"] is None else "vit"
    return BackboneSpec(name=name, arch=arch, input_resolution=args["image_resolution"], clip_args=dict(args),
                        seed=seed)

