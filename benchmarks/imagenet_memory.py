"""ImageNet-size memory: training steps of GOPro (1000 classes, batch 4, three views) and CoCoOp (1000 classes,
batch 4), with and without recomputing the text activations (``MODEL.TEXT_RECOMPUTE_BATCH``).

Per configuration, the memory model (``benchmarks/memory.py``): the text activations autograd keeps (bytes
per prompt of each length group x prompts, the shared context positions once per image) or, recomputed,
the chunks' inputs plus one chunk's activations; plus the step's other allocations (the learnable
parameters' gradients, the views' layer tokens, the prompt tensors). Beside it, the official cost's text
activations (77 tokens, every one kept). On CUDA one step is then run and its peak measured
(``torch.cuda.max_memory_allocated`` beyond the memory held before the step: weights, parameters and
optimizer state, which the step does not allocate). ``--measure`` on a CPU runs the step too and reports
the bytes autograd actually saved in the whole step (``saved_bytes``, without recomputation), which the
text part of the model must come close to: it is nearly all of them.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

from dataclasses import asdict, dataclass
from typing import List, Optional

import torch
from tabulate import tabulate

from benchmarks.class_names import IMAGENET
from benchmarks.common import build_clip, input_resolution, main, peak_bytes, resolve, size_text
from benchmarks.memory import saved_bytes, sequence_bytes, text_step_bytes
from benchmarks.whole_step import Built, method_config
from promptlearn.modeling.encoders import class_prompt_prefix

#: (method, classes, images per batch): the configurations that must fit one 80 GB GPU in fp16
CASES = (("GOPro", 1000, 4), ("CoCoOp", 1000, 4))
RECOMPUTE = (0, 1024)
VIEWS = {"GOPro": 3, "CoCoOp": 1}


@dataclass
class MemoryResult:
    method: str
    classes: int
    batch: int
    recompute_batch: int
    text_bytes: float  # model: text activations at the backward peak
    other_bytes: float  # model: the step's other allocations
    reference_text_bytes: float  # model: the official cost's text activations
    measured_peak: Optional[int] = None  # CUDA
    measured_saved: Optional[int] = None  # autograd's saved tensors, any device (--measure)

    @property
    def predicted(self) -> float:
        return self.text_bytes + self.other_bytes

    def to_json(self) -> dict:
        return {**asdict(self), "predicted": self.predicted}


def format_memory(results: List[MemoryResult]) -> str:
    headers = ["method", "C", "B", "recompute", "official text", "ours text", "ours other", "predicted peak",
               "measured peak", "saved text (measured)"]
    rows = [[r.method, r.classes, r.batch, r.recompute_batch or "off", size_text(r.reference_text_bytes),
             size_text(r.text_bytes), size_text(r.other_bytes), size_text(r.predicted), size_text(r.measured_peak),
             size_text(r.measured_saved)] for r in results]
    return tabulate(rows, headers=headers, disable_numparse=True)


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def other_bytes(built: Built, method: str, batch: int, resolution_tokens: int) -> float:
    """The step's allocations besides the text activations: the learnable parameters' gradients, every view's
    layer tokens (GOPro: kept for the generators), and the per-image prompts with their gradient."""
    model = built.model
    learner = model.prompt_learner
    element = torch.finfo(model.dtype).bits // 8
    copies = VIEWS[method] * batch
    grads = sum(p.numel() * p.element_size() for p in built.learner.parameters())
    encoder = model.image_encoder
    taps = copies * encoder.num_layers * resolution_tokens * encoder.width * element if method == "GOPro" else 0
    prompts = 2 * copies * learner.n_cls * learner.tokenized_prompts.shape[1] * learner.ctx.shape[-1] * element
    return grads + taps + prompts


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 1, measure: bool = False,
        classes: int = 0, recompute=None, as_fp16: bool = False) -> List[MemoryResult]:
    device, backbone, precision = resolve(device, backbone, precision)
    if as_fp16:
        if measure and device.type != "cuda":
            raise SystemExit("--as-fp16 on a CPU predicts only: drop --measure")
        precision = "fp16"
    clip_model = build_clip(backbone, device, precision)
    resolution = input_resolution(clip_model)
    results = []
    for method, count, batch in CASES:
        count = classes or count
        names = IMAGENET[:count]  # ImageNet's own names and token lengths
        for recompute_batch in (RECOMPUTE if recompute is None else recompute):
            cfg = method_config(method, precision, recompute_batch=recompute_batch)
            cfg.DATALOADER.TRAIN_X.BATCH_SIZE = batch
            built = Built(cfg, clip_model, names, device, precision)
            model, learner = built.model, built.model.prompt_learner
            copies = VIEWS[method] * batch
            prefix = class_prompt_prefix(learner, learner.tokenized_prompts) or 0
            target = torch.device("cuda") if as_fp16 else device  # --as-fp16: predicted for a GPU
            text = text_step_bytes(model.text_encoder, learner.tokenized_prompts, copies, device, recompute_batch,
                                   prefix, target)
            per_sequence, _ = sequence_bytes(model.text_encoder, 77, device)
            tokens = model.image_encoder.num_tokens
            result = MemoryResult(method, count, batch, recompute_batch, text["backward_peak_bytes"],
                                  other_bytes(built, method, batch, tokens), per_sequence * copies * count)
            if measure or device.type == "cuda":
                step, loss = _step(built, method, batch, resolution, device)
                step()  # the optimizer's state is allocated by the first step
                if device.type == "cuda":
                    result.measured_peak = peak_bytes(step, device)
                if not recompute_batch:  # recomputed chunks keep their inputs outside autograd's saved tensors
                    result.measured_saved, _ = saved_bytes(loss, exclude=list(clip_model.parameters()))
            results.append(result)
            print(format_memory(results[-1:]).splitlines()[-1], flush=True)
            del built
    return results


def _step(built: Built, method: str, batch: int, resolution: int, device):
    generator = torch.Generator().manual_seed(0)
    dtype = built.model.dtype
    images = {key: torch.randn(batch, 3, resolution, resolution, generator=generator).to(device, dtype)
              for key in ("img", *getattr(built.trainer, "view_keys", {}).values())}
    label = torch.randint(0, len(built.model.prompt_learner.classnames), (batch,), generator=generator).to(device)
    data = {**images, "label": label}
    built.model.train()

    def loss():
        return built.loss(data, data["img"], label)

    def step():
        built.step(data, data["img"], label)

    return step, loss


def add_arguments(parser) -> None:
    parser.add_argument("--measure", action="store_true",
                        help="on a CPU too, run each step and count the bytes autograd saves")
    parser.add_argument("--classes", type=int, default=0, help="the first N of ImageNet's classes instead of 1000")
    parser.add_argument("--as-fp16", action="store_true",
                        help="on a CPU, predict for fp16 weights (CUDA's precision; the counting runs a few "
                             "sequences in fp16 on the CPU)")
    parser.add_argument("--recompute", type=int, nargs="+", default=None,
                        help=f"MODEL.TEXT_RECOMPUTE_BATCH values (default {RECOMPUTE}; 0 = off)")


if __name__ == "__main__":
    main(run, __doc__.split("\n")[0], add_arguments=add_arguments, table=format_memory)
