"""CoOp (Zhou et al., IJCV 2022): a learnable context shared by all classes (or one per class, CSC)
in place of the hand-crafted template; cross-entropy on the frozen CLIP's logits."""
from torch.nn import functional as F
from yacs.config import CfgNode as CN

from promptlearn.engine import TRAINER_REGISTRY, CLIPTrainer
from promptlearn.modeling import PromptedCLIP, PromptLearner


class CoOpModel(PromptedCLIP):
    def __init__(self, clip_model, classnames, method_cfg, text_batch_size=0):
        super().__init__(clip_model, text_batch_size)
        self.prompt_learner = PromptLearner(
            classnames, clip_model, n_ctx=method_cfg.N_CTX, ctx_init=method_cfg.CTX_INIT, csc=method_cfg.CSC,
            class_token_position=method_cfg.CLASS_TOKEN_POSITION)

    def class_text_features(self):
        prompts = self.prompt_learner()
        return F.normalize(self.encode_text(prompts, self.prompt_learner.tokenized_prompts), dim=-1)

    def forward(self, image):
        return self.logits(self.encode_image(image), self.text_features())


@TRAINER_REGISTRY.register()
class CoOp(CLIPTrainer):
    CFG_NODE = "COOP"
    MODEL_NAME = "prompt_learner"

    @classmethod
    def extend_cfg(cls, cfg):
        # the learnable context: N_CTX word vectors (the words of CTX_INIT when given, else random), one set
        # shared by all classes or one per class (CSC); the class name goes at the end, middle or front
        cfg.TRAINER.COOP = CN()
        cfg.TRAINER.COOP.N_CTX = 16
        cfg.TRAINER.COOP.CSC = False
        cfg.TRAINER.COOP.CTX_INIT = ""
        cfg.TRAINER.COOP.PREC = "fp16"  # "fp16", "fp32" or "amp"
        cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"

    def build_custom_clip(self, clip_model, classnames):
        return CoOpModel(clip_model, classnames, self.method_cfg, self.cfg.MODEL.TEXT_BATCH_SIZE)
