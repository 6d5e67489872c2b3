"""Evaluation with the class text features encoded once per evaluation vs once per test batch.

For methods whose class prompts do not depend on the image (CoOp, MaPLe), ``CLIPTrainer.before_test``
calls ``PromptedCLIP.prepare_inference``, which encodes the C class prompts once; every test batch then
only runs the image encoder. Without that cache (the reference CoOp's ``forward``) the C prompts go
through the text encoder again for every batch. Both paths evaluate the same test batches with a CoOp
model; their logits are checked equal before the timing. (Zero-shot CLIP encodes its fixed prompts
once when the model is built, so it has nothing to cache.)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

import torch
from yacs.config import CfgNode as CN

from benchmarks.common import assert_same, build_clip, classnames, input_resolution, main, measure, resolve
from trainers.coop import CoOpModel

TEXT_BATCH_SIZE = 8192  # MODEL.TEXT_BATCH_SIZE's default
#: (test batches, images per batch, classes): on a GPU, CoOp's test batch of 100 over ImageNet's classes
SIZES = {"cpu": (4, 32, 100), "cuda": (4, 100, 1000)}


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5):
    device, backbone, precision = resolve(device, backbone, precision)
    clip_model = build_clip(backbone, device, precision)
    batches, batch_size, classes = SIZES[device.type]
    cfg = CN({"N_CTX": 16, "CTX_INIT": "", "CSC": False, "CLASS_TOKEN_POSITION": "end"})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CoOpModel(clip_model, classnames(classes), cfg, text_batch_size=TEXT_BATCH_SIZE).to(device).eval()
        size = input_resolution(clip_model)
        test_batches = [torch.randn(batch_size, 3, size, size).to(device, model.dtype) for _ in range(batches)]

    def cached():
        with torch.inference_mode():
            model.prepare_inference()
            logits = torch.cat([model(images) for images in test_batches])
            model.clear_cache()
        return logits

    def per_batch():
        with torch.inference_mode():
            return torch.cat([model(images) for images in test_batches])

    assert_same(per_batch(), cached(), precision, "evaluation with cached class text features")
    detail = f"{batches} batches x {batch_size} images, {classes} classes (CoOp, 16 context tokens)"
    return [measure("c. evaluation: class text features once vs every batch", detail, per_batch, cached,
                    device, repeats)]


if __name__ == "__main__":
    main(run, __doc__.split("\n")[0])
