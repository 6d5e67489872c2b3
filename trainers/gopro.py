"""GOPro (Singha et al., BMVC 2023): prompts generated from the visual content and style of every ViT
layer, optimized with CLIP's cross-entropy plus two self-supervised terms over augmented views.

Per image x, the frozen image encoder's token sequence after every layer l gives a style feature (token
mean and standard deviation) and a content feature (token mean); per-layer linear maps take them to the
text width, the FRG pooling averages the pair, and a learned mixing over layers (rho) yields one shift of
the learnable context -- one prompt per image per class. Views: the original, a MoCo v3 view (x1) and an
AugMix view (x2), made from the raw image in the data loader. Losses:
    L_ce  on the original view's logits,
    L_sem = d(T(x), T(x1)) + d(T(x), T(x2)), T the text features of an image's class prompts,
    L_con = SimCLR between the image projector's outputs P_v(f(x)) and P_v(f(x1)) (temperature 0.1).

Where the paper and the official code differ (README, "GOPro: paper vs official code") each choice is a
switch of TRAINER.GOPRO: loss weights (D1), SEM_DISTANCE l2 | mse (D2), SHARED_GENERATOR (D3),
PROJECTOR_IN_LOGITS (D4). The defaults are the paper's; configs/trainers/GOPro/vit_b16_official.yaml
selects the official structure. Where both are silent: SHIFT_INIT (how the generators start, PromptGenerator)
and PROJECTOR_NORM (P_v's normalization, ImageProjector).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from promptlearn.data.transforms import build_transform
from promptlearn.data.transforms.views import build_augmix_view, build_mocov3_view
from promptlearn.engine import TRAINER_REGISTRY, CLIPTrainer
from promptlearn.errors import UserError
from promptlearn.metrics import compute_accuracy
from promptlearn.modeling import PromptedCLIP, PromptLearner
from promptlearn.modeling.losses import SEM_DISTANCES, prompt_consistency_loss, simclr_loss
from promptlearn.utils.distributed import batch_norm

VIEWS = ("orig", "moco", "augmix")
PROJECTOR_NORMS = ("batch", "running", "layer")
SHIFT_INITS = ("zero", "zero_rho", "pytorch")
STD_EPS = 2.3e-8  # added to the sum of squares before the square root, as the official code does


class LayerwiseLinear(nn.Module):
    """One independent Linear(in_features, out_features) per layer, applied to (B, L, in) in one einsum."""

    def __init__(self, num_layers: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_layers, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_layers, out_features))
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default initialization, per layer
        nn.init.kaiming_uniform_(self.weight.view(-1, in_features), a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bli,loi->blo", x, self.weight) + self.bias


def style_content_statistics(tokens) -> tuple:
    """Per layer: (token mean + token std) / 2 (style input) and token mean (content input), (B, L, W) each.

    ``tokens``: the token sequences after every layer, L tensors of (B, T, W). The std is the
    population std with the official code's epsilon; statistics are computed in fp32.
    """
    x = torch.stack(tokens, dim=1).float()  # (B, L, T, W)
    mean = x.mean(dim=2)
    std = torch.sqrt(((x - mean.unsqueeze(2)) ** 2).sum(dim=2).add(STD_EPS) / x.shape[2])
    return (mean + std) / 2, mean


class PromptGenerator(nn.Module):
    """rho: per-layer style and content projectors, FRG pooling and the mixing over layers -> shift (B, D).

    ``init`` (SHIFT_INIT):
    - "zero": the shift starts at 0 for every image and no tensor is gated. The projectors' weights start
      at 0, rho as a uniform mix, and each layer's pooled feature is a constant that cancels in the mix: the
      projectors' biases are +c or -c, of opposite signs in layers 2k and 2k+1 (0 in an odd last layer).
      rho's weights then get a gradient (their inputs are not 0) and the projectors get rho's weight times
      the shift's gradient. c and the mix weight are powers of two, so every partial sum is exact and the
      shift is exactly 0.0 in floating point, not up to rounding: the views' prompts are then identical at
      the start, and L_sem's L2 distance is 0 with a zero gradient instead of rounding noise with a
      unit-norm one.
    - "zero_rho": the shift starts at 0 because rho does. This gates the projectors: their gradient is rho's
      weight times the shift's, 0 at the first step and small while rho stays near 0.
    - "pytorch": PyTorch's default initialization (the official code's); the untrained shift is random.
    """

    BIAS = 2.0 ** -7  # c

    def __init__(self, num_layers: int, vis_width: int, ctx_dim: int, init: str = "pytorch"):
        super().__init__()
        self.style = LayerwiseLinear(num_layers, vis_width, ctx_dim)
        self.content = LayerwiseLinear(num_layers, vis_width, ctx_dim)
        # no bias: a shift along (1, ..., 1) is invisible to the text encoder (every block reads its input through
        # a LayerNorm, and so do the final features), so the official code's rho bias never gets a gradient
        self.rho = nn.Linear(num_layers, 1, bias=False)
        if init == "zero_rho":
            nn.init.zeros_(self.rho.weight)
        elif init == "zero":
            pairs = num_layers // 2
            with torch.no_grad():
                self.rho.weight.fill_(2.0 ** -math.ceil(math.log2(num_layers)))
                for projector in (self.style, self.content):
                    projector.weight.zero_()
                    signs = torch.randint(0, 2, (pairs, ctx_dim)) * 2.0 - 1
                    projector.bias.zero_()
                    projector.bias[0:2 * pairs:2] = self.BIAS * signs
                    projector.bias[1:2 * pairs:2] = -self.BIAS * signs

    def forward(self, tokens) -> torch.Tensor:
        style_in, content_in = style_content_statistics(tokens)
        pooled = (self.style(style_in) + self.content(content_in)) / 2  # FRG pooling, (B, L, D)
        return self.rho(pooled.transpose(1, 2)).squeeze(-1)  # mixing over layers, (B, D)


class ImageProjector(nn.Module):
    """P_v: Linear + normalization over the embedding width, applied to f, the L2-normalized CLIP image feature
    (as in the official code; the raw feature's norm differs between images and backbones).

    ``residual=True`` (paper formulation, where P_v feeds the logits): output f + norm(Linear(f)) with the norm's
    scale starting at 0, so P_v is the identity at initialization and CLIP's zero-shot alignment is kept;
    the Linear starts as the identity too, and learns from the second step on (its gradient is scaled by the
    norm's scale, which learns from the first). ``residual=False``: the official code's plain norm(Linear(f)).

    ``norm`` (PROJECTOR_NORM): "batch", BatchNorm with the batch's statistics in training and the running
    ones at evaluation (the paper's and the official code's); "running", BatchNorm with the running statistics
    in training too (still estimated from the training batches), so that P_v is the same function of an image
    in training and evaluation; "layer", LayerNorm over the embedding width (no batch statistics at all).
    """

    def __init__(self, dim: int, residual: bool, norm: str = "batch"):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim) if norm == "layer" else nn.BatchNorm1d(dim)
        self.norm_kind = norm
        self.residual = residual
        if residual:
            with torch.no_grad():
                self.linear.weight.copy_(torch.eye(dim))
                self.linear.bias.zero_()
            nn.init.zeros_(self.norm.weight)

    def normalize(self, hidden: torch.Tensor, track_stats: bool) -> torch.Tensor:
        """BatchNorm statistics are those of the global batch under torchrun (``batch_norm``)."""
        norm = self.norm
        if self.norm_kind == "layer" or not self.training:
            return norm(hidden)
        if self.norm_kind == "running":
            if track_stats:
                with torch.no_grad():
                    batch_norm(norm, hidden)  # folds this batch into the running statistics
            return F.batch_norm(hidden, norm.running_mean, norm.running_var, norm.weight, norm.bias, training=False,
                                eps=norm.eps)
        return batch_norm(norm, hidden, update_stats=track_stats)

    def forward(self, features: torch.Tensor, track_stats: bool = True) -> torch.Tensor:
        """``track_stats=False``: in training, leave the running statistics (which evaluation uses) as they are."""
        features = F.normalize(features.float(), dim=-1)
        out = self.normalize(self.linear(features), track_stats)
        return features + out if self.residual else out


class GOProModel(PromptedCLIP):
    learnable_names = ("prompt_learner", "generators", "simproj")
    checkpoint_layout = "by_name"

    def __init__(self, clip_model, classnames, method_cfg, views, text_batch_size=0):
        super().__init__(clip_model, text_batch_size)
        self.image_encoder.require_vit("GOPro's style and content prompts")
        self.prompt_learner = PromptLearner(classnames, clip_model, n_ctx=method_cfg.N_CTX,
                                            ctx_init=method_cfg.CTX_INIT, honour_n_ctx=True)
        ctx_dim = self.text_encoder.width
        layers, width = self.image_encoder.num_layers, self.image_encoder.width
        names = ["shared"] if method_cfg.SHARED_GENERATOR else list(views)
        self.generators = nn.ModuleDict({name: PromptGenerator(layers, width, ctx_dim, method_cfg.SHIFT_INIT)
                                         for name in names})
        self.simproj = ImageProjector(self.image_encoder.output_dim, residual=method_cfg.PROJECTOR_IN_LOGITS,
                                      norm=method_cfg.PROJECTOR_NORM)
        self.projector_in_logits = method_cfg.PROJECTOR_IN_LOGITS

    def generator(self, view: str) -> PromptGenerator:
        return self.generators["shared"] if "shared" in self.generators else self.generators[view]

    def encode_images(self, images: torch.Tensor, with_tokens: bool):
        """Frozen image encoder: features (B, E) and, if asked, the token sequence after every layer."""
        with torch.no_grad():
            return self.encode_image(images, return_tokens=with_tokens)

    def class_prompt_features(self, tokens_per_view: dict) -> dict:
        """Normalized text features (B, C, E) of every image's class prompts, all views in one text call."""
        shifts = [self.generator(view)(tokens) for view, tokens in tokens_per_view.items()]
        sizes = [shift.shape[0] for shift in shifts]
        prompts = self.prompt_learner(torch.cat(shifts))
        text = F.normalize(self.encode_text(prompts, self.prompt_learner.tokenized_prompts), dim=-1)
        return dict(zip(tokens_per_view, text.split(sizes)))

    def classifier_features(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.simproj(image_features) if self.projector_in_logits else image_features

    def image_embedding(self, image: torch.Tensor) -> torch.Tensor:
        """P_v's output in the paper structure, CLIP's image feature in the official one."""
        return self.classifier_features(self.encode_image(image))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of the original view only."""
        features, tokens = self.encode_images(image, with_tokens=True)
        text = self.class_prompt_features({"orig": tokens})["orig"]
        return self.logits(self.classifier_features(features), text)


@TRAINER_REGISTRY.register()
class GOPro(CLIPTrainer):
    CFG_NODE = "GOPRO"
    MODEL_NAME = "gopro"

    @classmethod
    def extend_cfg(cls, cfg):
        cfg.TRAINER.GOPRO = CN()
        cfg.TRAINER.GOPRO.N_CTX = 4  # context tokens, honoured also with an init phrase
        cfg.TRAINER.GOPRO.CTX_INIT = "a photo of a"
        cfg.TRAINER.GOPRO.PREC = "fp16"  # fp16, fp32, amp
        # Loss terms (Table 3 ablations): L_sem on the MoCo v3 view, on the AugMix view, and L_con
        cfg.TRAINER.GOPRO.LOSS_SEM_MOCO = True
        cfg.TRAINER.GOPRO.LOSS_SEM_AUGMIX = True
        cfg.TRAINER.GOPRO.LOSS_CON = True
        # Loss weights (paper: 1/1/1; official code: 1/1/0.1)
        cfg.TRAINER.GOPRO.W_CE = 1.0
        cfg.TRAINER.GOPRO.W_SEM = 1.0
        cfg.TRAINER.GOPRO.W_CON = 1.0
        cfg.TRAINER.GOPRO.SEM_DISTANCE = "l2"  # paper: L2 norm; official code: "mse"
        cfg.TRAINER.GOPRO.SHARED_GENERATOR = False  # paper: one prompt generator per view; official: shared
        cfg.TRAINER.GOPRO.PROJECTOR_IN_LOGITS = True  # paper: P_v on the image branch of L_ce; official: only L_con
        # the image-conditioned shift starts at exactly zero with no generator tensor gated (PromptGenerator), so
        # training starts from zero-shot CLIP's prompts (the paper is silent); "zero_rho" zeroes the mixing
        # instead, which gates the projectors; "pytorch": the official code's default init shifts them at random
        cfg.TRAINER.GOPRO.SHIFT_INIT = "zero"
        cfg.TRAINER.GOPRO.PROJECTOR_NORM = "batch"  # P_v's normalization: batch | running | layer (ImageProjector)
        cfg.TRAINER.GOPRO.CON_TEMPERATURE = 0.1
        cfg.TRAINER.GOPRO.AUGMIX_SEVERITY = 1

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        if cfg.TRAINER.GOPRO.SEM_DISTANCE not in SEM_DISTANCES:
            raise UserError(f"TRAINER.GOPRO.SEM_DISTANCE must be one of {SEM_DISTANCES}, "
                            f'got "{cfg.TRAINER.GOPRO.SEM_DISTANCE}"')
        for key, values in (("PROJECTOR_NORM", PROJECTOR_NORMS), ("SHIFT_INIT", SHIFT_INITS)):
            if cfg.TRAINER.GOPRO[key] not in values:
                raise UserError(f'TRAINER.GOPRO.{key} must be one of {values}, got "{cfg.TRAINER.GOPRO[key]}"')
        if cfg.TRAINER.GOPRO.CON_TEMPERATURE <= 0:
            raise UserError("TRAINER.GOPRO.CON_TEMPERATURE must be positive")
        if cfg.DATALOADER.TRAIN_X.BATCH_SIZE < 2:
            raise UserError("GOPro's image projector uses BatchNorm over the batch: DATALOADER.TRAIN_X.BATCH_SIZE "
                            "must be at least 2 (the paper uses 4)")

    @property
    def needed_views(self) -> dict:
        """The augmented views training computes, in the loader's order: {view: (batch key, "tokens" when their
        prompts are needed | "features" when only L_con uses the view)}. Derived from the config alone, so the
        loader's transforms and the loss read the same keys."""
        g = self.cfg.TRAINER.GOPRO
        needs = []
        if g.LOSS_SEM_MOCO:
            needs.append(("moco", "tokens"))
        elif g.LOSS_CON:
            needs.append(("moco", "features"))
        if g.LOSS_SEM_AUGMIX:
            needs.append(("augmix", "tokens"))
        # the loader names a list of transforms' outputs img, img2, img3, ...
        return {view: (f"img{i + 2}", need) for i, (view, need) in enumerate(needs)}

    @property
    def view_keys(self) -> dict:
        """{augmented view: its key in a training batch}."""
        return {view: key for view, (key, _) in self.needed_views.items()}

    def custom_train_transform(self):
        """The original view (the config's training transform) as ``img``, then each needed augmented view."""
        cfg = self.cfg
        size, mean, std = cfg.INPUT.SIZE, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
        transforms = [build_transform(cfg, is_train=True)]
        for view in self.needed_views:
            if view == "moco":
                transforms.append(build_mocov3_view(size, mean, std))
            else:
                transforms.append(build_augmix_view(size, mean, std, cfg.TRAINER.GOPRO.AUGMIX_SEVERITY))
        return transforms if len(transforms) > 1 else None

    def build_custom_clip(self, clip_model, classnames):
        views = ["orig", *[view for view, (_, need) in self.needed_views.items() if need == "tokens"]]
        return GOProModel(clip_model, classnames, self.method_cfg, views, self.cfg.MODEL.TEXT_BATCH_SIZE)

    def compute_loss(self, batch, image, label):
        g = self.cfg.TRAINER.GOPRO
        model = self.model
        features, tokens = model.encode_images(image, with_tokens=True)
        view_tokens = {"orig": tokens}
        view_features = {}
        for view, (key, need) in self.needed_views.items():
            images = batch[key].to(self.device)
            if need == "tokens":
                view_features[view], view_tokens[view] = model.encode_images(images, with_tokens=True)
            else:
                view_features[view] = model.encode_images(images, with_tokens=False)
        text = model.class_prompt_features(view_tokens)

        # P_v on the original view: for the logits (paper structure) and for L_con; skipped when neither uses it
        z_orig = model.simproj(features) if model.projector_in_logits or g.LOSS_CON else None
        logits = model.logits(z_orig if model.projector_in_logits else features, text["orig"])
        loss_ce = F.cross_entropy(logits, label)
        loss = g.W_CE * loss_ce
        summary = {"loss_ce": loss_ce.item()}
        if g.LOSS_SEM_MOCO or g.LOSS_SEM_AUGMIX:
            loss_sem = sum(prompt_consistency_loss(text["orig"], text[view], g.SEM_DISTANCE)
                           for view in ("moco", "augmix") if view in text)
            loss = loss + g.W_SEM * loss_sem
            summary["loss_sem"] = loss_sem.item()
        if g.LOSS_CON:
            # the MoCo view's statistics stay out of the running ones that the logits use at evaluation
            z_moco = model.simproj(view_features["moco"], track_stats=not model.projector_in_logits)
            loss_con = simclr_loss(z_orig, z_moco, g.CON_TEMPERATURE)
            loss = loss + g.W_CON * loss_con
            summary["loss_con"] = loss_con.item()
        summary["loss"] = loss.item()
        summary["acc"] = compute_accuracy(logits, label)[0].item()
        return loss, summary
