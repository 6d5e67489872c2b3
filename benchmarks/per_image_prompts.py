"""CoCoOp / GOPro per-image prompts: one batched text-encoder call for all B x C prompts vs a loop over images.

Every image gets its own prompt for every class (the learnable context shifted by the image's meta-net
output). The reference code encodes them image by image in a Python loop; ``PromptedCLIP.encode_text``
encodes all B x C prompts in one call (chunked to ``MODEL.TEXT_BATCH_SIZE`` sequences when no gradient
is needed). Both paths use the same sequences (length groups, the shared context once per image), so the
difference is the batching alone. The
outputs are checked equal before the timing. Cases: evaluation (a test batch, no gradient) and a
training step (forward + backward to the prompt learner), for a batch of GOPro's size: 4 images x 3
views.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

import torch
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from benchmarks.common import assert_same, build_clip, classnames, main, measure, resolve
from promptlearn.modeling.encoders import class_prompt_prefix
from trainers.cocoop import CoCoOpModel

TEXT_BATCH_SIZE = 8192  # MODEL.TEXT_BATCH_SIZE's default
#: (images, classes) per device and case; on a GPU: a test batch of 100 and CoCoOp's training batch
#: of GOPro's 4 images x 3 views, with 100 classes
EVAL_SIZE = {"cpu": (16, 20), "cuda": (100, 100)}
TRAIN_SIZE = {"cpu": (12, 20), "cuda": (12, 100)}


def _model(clip_model, count: int, device) -> CoCoOpModel:
    cfg = CN({"N_CTX": 4, "CTX_INIT": "a photo of a"})
    model = CoCoOpModel(clip_model, classnames(count), cfg, text_batch_size=TEXT_BATCH_SIZE).to(device)
    return model.eval()


def _image_features(model: CoCoOpModel, images: int, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(images, model.image_encoder.output_dim, generator=generator)
    return F.normalize(features, dim=-1).to(device, model.dtype)


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5):
    device, backbone, precision = resolve(device, backbone, precision)
    clip_model = build_clip(backbone, device, precision)
    results = []

    images, classes = EVAL_SIZE[device.type]
    model = _model(clip_model, classes, device)
    learner = model.prompt_learner
    features = _image_features(model, images, device)

    def batched():
        with torch.inference_mode():
            return model.encode_text(learner(features), learner.tokenized_prompts)

    def encode_one(prompts):  # one image's C prompts, with the encoder's options of the batched call
        tokenized = learner.tokenized_prompts
        return model.text_encoder(prompts, tokenized, shared_prefix=class_prompt_prefix(learner, tokenized))

    def looped():
        with torch.inference_mode():
            return torch.stack([encode_one(p) for p in learner(features)])

    assert_same(looped(), batched(), precision, "batched per-image prompts")
    detail = f"{images} images x {classes} classes, inference"
    results.append(measure("b. per-image prompts, evaluation: one batched call vs loop over images", detail,
                           looped, batched, device, repeats))

    images, classes = TRAIN_SIZE[device.type]
    model = _model(clip_model, classes, device).train()
    learner = model.prompt_learner
    features = _image_features(model, images, device)

    def step(encode):
        learner.zero_grad(set_to_none=True)
        encode(learner(features)).float().square().sum().backward()
        return learner.ctx.grad

    def step_batched():
        return step(lambda prompts: model.encode_text(prompts, learner.tokenized_prompts))

    def step_looped():
        return step(lambda prompts: torch.stack([encode_one(p) for p in prompts]))

    assert_same(step_looped().clone(), step_batched().clone(), precision, "gradient of batched per-image prompts")
    detail = f"{images} images x {classes} classes, forward+backward"
    results.append(measure("b. per-image prompts, training: one batched call vs loop over images", detail,
                           step_looped, step_batched, device, repeats))
    return results


if __name__ == "__main__":
    main(run, __doc__.split("\n")[0])
