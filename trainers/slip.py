"""SLIP as GOPro's tables compare with it: CLIP's image-text objective and SLIP's SimCLR objective blended in one
multi-task loss (Mu et al., ECCV 2022), applied to few-shot adaptation of a pre-trained CLIP.

The paper gives no recipe for its SLIP row; this is this codebase's reading (README, "SLIP"). The class prompts
are fixed, hand-made ones (the dataset's template, as zero-shot CLIP's); what learns is a configurable top of
CLIP's image encoder (its last TRAIN_BLOCKS residual blocks and, with TRAIN_LN_POST, the final LayerNorm) and
SLIP's SimCLR head. Per batch, the original view and two SLIP views of every image go through the image encoder:
    L_ce   = cross-entropy of the original view's logits over the class prompts (CLIP's image-text loss with
             class names for captions),
    L_ssl  = SimCLR (NT-Xent, temperature 0.1) between the head's outputs for the two views,
    L      = W_CE * L_ce + W_SSL * L_ssl   (SLIP: clip_loss + ssl_scale * ssl_loss, ssl_scale 1).
The head is SLIP's: Linear-BN-ReLU-Linear-BN-ReLU-Linear (MLP_DIM 4096, EMB_DIM 256), on the image tower's
output. Evaluation is zero-shot CLIP's with the trained image encoder; the head is not used.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from promptlearn.data.data_manager import view_key
from promptlearn.data.transforms import build_transform
from promptlearn.data.transforms.views import build_slip_view
from promptlearn.engine import TRAINER_REGISTRY, CLIPTrainer
from promptlearn.errors import UserError
from promptlearn.metrics import compute_accuracy
from promptlearn.modeling.losses import simclr_loss

from .templates import dataset_template
from .zsclip import ZeroshotCLIPModel

#: the two SimCLR views' keys in a training batch (``img`` is the original view)
VIEW_KEYS = (view_key(1), view_key(2))


def simclr_head(in_dim: int, mlp_dim: int, out_dim: int) -> nn.Sequential:
    """SLIP's projection head for the SimCLR loss: three linear layers, BatchNorm and ReLU after the first two."""
    return nn.Sequential(OrderedDict([
        ("layer1", nn.Linear(in_dim, mlp_dim)),
        ("bn1", nn.BatchNorm1d(mlp_dim)),
        ("relu1", nn.ReLU(inplace=True)),
        ("layer2", nn.Linear(mlp_dim, mlp_dim)),
        ("bn2", nn.BatchNorm1d(mlp_dim)),
        ("relu2", nn.ReLU(inplace=True)),
        ("layer3", nn.Linear(mlp_dim, out_dim)),
    ]))


class SLIPModel(ZeroshotCLIPModel):
    """Zero-shot CLIP whose image encoder's top (``tuned_image``) and a SimCLR head (``ssl_head``) are learned."""

    learnable_names = ("tuned_image", "ssl_head")
    checkpoint_layout = "by_name"

    def __init__(self, clip_model, classnames, templates, method_cfg, text_batch_size=0):
        super().__init__(clip_model, classnames, templates, text_batch_size)
        encoder = self.image_encoder
        encoder.require_vit("SLIP's trained image-encoder blocks")
        blocks = list(encoder.visual.transformer.resblocks)
        n = method_cfg.TRAIN_BLOCKS
        if not 0 <= n <= len(blocks):
            raise UserError(f"TRAINER.SLIP.TRAIN_BLOCKS must be between 0 and {len(blocks)}, the number of blocks of "
                            f"this backbone's image encoder; got {n}")
        # the same modules as in the encoder, registered here too so that they are optimized and checkpointed
        tuned = nn.ModuleDict({"blocks": nn.ModuleList(blocks[len(blocks) - n:])})
        if method_cfg.TRAIN_LN_POST:
            tuned["ln_post"] = encoder.visual.ln_post
        self.tuned_image = tuned
        self.ssl_head = simclr_head(encoder.output_dim, method_cfg.MLP_DIM, method_cfg.EMB_DIM)


@TRAINER_REGISTRY.register()
class SLIP(CLIPTrainer):
    CFG_NODE = "SLIP"
    MODEL_NAME = "slip"

    @classmethod
    def extend_cfg(cls, cfg):
        cfg.TRAINER.SLIP = CN()
        cfg.TRAINER.SLIP.PREC = "amp"  # amp or fp32: CLIP's own weights are trained (fp16 is refused)
        cfg.TRAINER.SLIP.TRAIN_BLOCKS = 1  # the last N residual blocks of the image encoder are trained
        cfg.TRAINER.SLIP.TRAIN_LN_POST = True  # and its final LayerNorm
        cfg.TRAINER.SLIP.MLP_DIM = 4096  # SLIP's SimCLR head: hidden width ...
        cfg.TRAINER.SLIP.EMB_DIM = 256  # ... and output width
        cfg.TRAINER.SLIP.SSL_TEMPERATURE = 0.1
        cfg.TRAINER.SLIP.W_CE = 1.0
        cfg.TRAINER.SLIP.W_SSL = 1.0  # SLIP's ssl_scale

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        s = cfg.TRAINER.SLIP
        if s.PREC == "fp16":
            raise UserError("TRAINER.SLIP.PREC fp16 would train CLIP's fp16 weights in fp16, where updates smaller "
                            "than the weights' resolution are lost; use amp (fp32 weights, fp16 compute on CUDA, as "
                            "SLIP trains) or fp32")
        if s.TRAIN_BLOCKS < 0:
            raise UserError(f"TRAINER.SLIP.TRAIN_BLOCKS must be 0 or more, got {s.TRAIN_BLOCKS}")
        if s.TRAIN_BLOCKS == 0 and not s.TRAIN_LN_POST:
            raise UserError("TRAINER.SLIP trains nothing of the image encoder (TRAIN_BLOCKS 0, TRAIN_LN_POST False): "
                            "the losses could not change the classifier")
        if s.MLP_DIM < 1 or s.EMB_DIM < 1:
            raise UserError("TRAINER.SLIP.MLP_DIM and EMB_DIM must be positive")
        if s.SSL_TEMPERATURE <= 0:
            raise UserError("TRAINER.SLIP.SSL_TEMPERATURE must be positive")
        if cfg.DATALOADER.TRAIN_X.BATCH_SIZE < 2:
            raise UserError("SLIP's SimCLR loss contrasts the images of a batch and its head uses BatchNorm: "
                            "DATALOADER.TRAIN_X.BATCH_SIZE must be at least 2")

    def custom_train_transform(self):
        """The original view (the config's training transform) as ``img``, SLIP's two SimCLR views as img2, img3."""
        cfg = self.cfg
        view = build_slip_view(cfg.INPUT.SIZE, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
        return [build_transform(cfg, is_train=True), view, view]

    def build_custom_clip(self, clip_model, classnames):
        templates = [dataset_template(self.cfg.DATASET.NAME)]
        return SLIPModel(clip_model, classnames, templates, self.method_cfg, self.cfg.MODEL.TEXT_BATCH_SIZE)

    def compute_loss(self, batch, image, label):
        s = self.method_cfg
        model = self.model
        views = [batch[key].to(self.device) for key in VIEW_KEYS]
        # one encoder pass for the three views (LayerNorm is per token, so batching them changes nothing)
        features, view_a, view_b = model.encode_image(torch.cat([image, *views])).split(image.shape[0])
        logits = model.logits(features, model.text_features())
        loss_ce = F.cross_entropy(logits, label)
        # the head sees each view's batch on its own, as SLIP's (its BatchNorm statistics are per view)
        loss_ssl = simclr_loss(model.ssl_head(view_a), model.ssl_head(view_b), s.SSL_TEMPERATURE)
        loss = s.W_CE * loss_ce + s.W_SSL * loss_ssl
        return loss, {"loss": loss.item(), "loss_ce": loss_ce.item(), "loss_ssl": loss_ssl.item(),
                      "acc": compute_accuracy(logits, label)[0].item()}
