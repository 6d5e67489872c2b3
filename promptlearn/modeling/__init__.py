"""CLIP loading, precision, the shared encoders and prompt construction."""
from .backbones import BACKBONES, get_backbone_spec, load_clip
from .encoders import ImageEncoder, TextEncoder
from .precision import apply_precision, resolve_precision
from .prompted_clip import PromptedCLIP
from .prompts import PromptLearner, clean_classname, tokenize

__all__ = ["BACKBONES", "ImageEncoder", "PromptLearner", "PromptedCLIP", "TextEncoder", "apply_precision",
           "clean_classname", "get_backbone_spec", "load_clip", "resolve_precision", "tokenize"]
