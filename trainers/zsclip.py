"""Zero-shot CLIP: class text features from a hand-crafted template per dataset (ZeroshotCLIP), or the
average over an ensemble of templates (ZeroshotCLIP2). Nothing is learned; run with ``--eval-only``."""
import torch
import torch.nn.functional as F

from promptlearn.engine import TRAINER_REGISTRY, CLIPTrainer
from promptlearn.modeling import PromptedCLIP, clean_classname, tokenize
from promptlearn.modeling.prompts import embed_tokens

from .templates import IMAGENET_TEMPLATES_SELECT, dataset_template


class ZeroshotCLIPModel(PromptedCLIP):
    learnable_names = ()

    def __init__(self, clip_model, classnames, templates, text_batch_size=0):
        super().__init__(clip_model, text_batch_size)
        features = []
        with torch.no_grad():
            for template in templates:
                tokenized = tokenize([template.format(clean_classname(c)) for c in classnames])
                text = self.encode_text(embed_tokens(clip_model, tokenized), tokenized)
                features.append(F.normalize(text.float(), dim=-1))
            mean = F.normalize(torch.stack(features).mean(0), dim=-1)
        self.register_buffer("text_features_fixed", mean.type(clip_model.dtype), persistent=False)

    def class_text_features(self):
        return self.text_features_fixed

    def forward(self, image):
        return self.logits(self.encode_image(image), self.text_features())


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(CLIPTrainer):
    """CLIP with the dataset's hand-crafted template, e.g. "a photo of a {}."."""

    def requested_precision(self) -> str:
        return "fp16"  # CLIP's own weights; fp32 on a CPU

    def templates(self):
        return [dataset_template(self.cfg.DATASET.NAME)]

    def build_custom_clip(self, clip_model, classnames):
        return ZeroshotCLIPModel(clip_model, classnames, self.templates(), self.cfg.MODEL.TEXT_BATCH_SIZE)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensembling: the 7 selected ImageNet templates, plus the dataset's own outside ImageNet."""

    def templates(self):
        templates = list(IMAGENET_TEMPLATES_SELECT)
        if self.cfg.DATASET.NAME != "ImageNet":
            templates.append(dataset_template(self.cfg.DATASET.NAME))
        return templates
