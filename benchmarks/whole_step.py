"""Whole training steps and evaluation batches of CoOp, CoCoOp, MaPLe and GOPro: ours vs the official cost.

For each method, with the hyper-parameters and batch sizes of its paper config (``configs/trainers/*/vit_b16*``)
and C classes of varied name lengths:

- **ours**: the trainer's own code -- ``build_custom_clip``, ``compute_loss`` under the trainer's autocast,
  zero_grad / backward / the optimizer from ``OPTIM`` -- and, for evaluation, the model's forward under
  ``inference_mode`` after ``prepare_inference`` (class text features encoded once per evaluation).
  GOPro's augmented views come from the data loader: their cost is timed apart ("views"), from decoded
  raw images, and "ours + views" adds it for a loader that runs in the training process.
- **reference**: ``benchmarks/reference.py``, what the official code does (77-token prompts through CLIP's own
  blocks, a Python loop over images for per-image prompts, GOPro's device -> PIL -> device views with B^2
  AugMix calls, all three views at test time). GOPro's reference runs the official structure (one shared
  generator, P_v in L_con only); ours runs the paper's (three generators), the default config.
- **floor**: the frozen image-encoder passes the step needs, alone (GOPro training: its three views with
  their layer tokens; evaluation: one pass over the test batch).

Before timing, every case checks ours equal to the reference where the math is the same: the loss and the
gradients of the learnable context (and MaPLe's deep prompts, GOPro's shared generator) of a training step,
the logits of an evaluation batch (GOPro: our model in the official structure, on the same views).
A reference whose activations would not fit (``--memory-budget``; predicted by ``benchmarks/memory.py``)
is skipped with a note. "kept" is the memory autograd keeps for backward in the training step (every
device; see ``saved_bytes``); on CUDA the peak allocated memory of each path is measured too.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it (see contention.py)

from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tabulate import tabulate

import trainers  # noqa: F401  (registers the trainers)
from benchmarks import reference
from benchmarks.common import (
    OPENAI_SHAPES,
    assert_same,
    build_clip,
    classnames,
    input_resolution,
    main,
    median,
    peak_bytes,
    resolve,
    size_text,
    time_paths,
    timing_text,
)
from benchmarks.memory import saved_bytes, sequence_bytes, text_step_bytes
from promptlearn.config import get_cfg_default, merge_from_file
from promptlearn.data.transforms.views import build_augmix_view, build_mocov3_view
from promptlearn.engine import TRAINER_REGISTRY, extend_cfg_for_trainers
from promptlearn.modeling.backbones import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from promptlearn.modeling.encoders import class_prompt_prefix
from promptlearn.modeling.precision import autocast, cpu_has_bf16
from promptlearn.optim import build_optimizer

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "trainers")
CONFIGS = {"CoOp": "CoOp/vit_b16_ctxv1.yaml", "CoCoOp": "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml",
           "MaPLe": "MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml", "GOPro": "GOPro/vit_b16.yaml"}
OFFICIAL_GOPRO = "GOPro/vit_b16_official.yaml"
METHODS = tuple(CONFIGS)
#: class counts and test batch per setting: Caltech-like (the 5 base classes of a synthetic Caltech101)
#: up to ImageNet-like counts where the device allows
PRESETS = {
    "cpu-tiny": {"classes": (5, 50, 100), "eval_batch": 32, "budget_gb": 3.0},
    "cpu-vit": {"classes": (5,), "eval_batch": 10, "budget_gb": 6.0},
    "cuda": {"classes": (5, 50, 100, 500, 1000), "eval_batch": 100, "budget_gb": 0.0},  # 0: 90% of free memory
}
RAW_ASPECT = (500, 375)  # a typical decoded photo (width, height) at 224 px, scaled with the input resolution
GRAD_RTOL = {"fp32": 1e-3, "fp16": 5e-2, "amp": 1e-1}


@dataclass
class StepResult:
    """One method, phase and class count: seconds of every timed run per path, bytes per path."""

    method: str
    phase: str  # "train" or "eval"
    classes: int
    batch: int
    samples: Dict[str, List[float]]
    kept_bytes: Dict[str, int] = field(default_factory=dict)  # autograd's saved tensors (training)
    peak_bytes: Dict[str, int] = field(default_factory=dict)  # CUDA peak allocation
    note: str = ""

    def seconds(self, path: str) -> Optional[float]:
        return median(self.samples[path]) if path in self.samples else None

    @property
    def ours_total(self) -> float:
        """Ours, plus the loader's view building when it runs in the training process (GOPro)."""
        return self.seconds("ours") + (self.seconds("views") or 0.0)

    @property
    def speedup(self) -> Optional[float]:
        ref = self.seconds("reference")
        return None if ref is None else ref / self.ours_total

    @property
    def over_floor(self) -> Optional[float]:
        floor = self.seconds("floor")
        return None if floor is None else self.seconds("ours") / floor

    def to_json(self) -> dict:
        return {**asdict(self), "median_s": {path: self.seconds(path) for path in self.samples},
                "speedup": self.speedup, "ours_over_floor": self.over_floor}


def _pair(sizes: Dict[str, int]) -> str:
    return f"{size_text(sizes.get('reference'))} / {size_text(sizes.get('ours'))}" if sizes else "-"


def format_steps(results: List[StepResult]) -> str:
    cuda = any(r.peak_bytes for r in results)
    headers = ["method", "phase", "C", "B", "reference", "ours", "views", "speed-up", "floor", "ours/floor",
               "kept ref / ours"]
    if cuda:
        headers += ["ours steps/s", "peak ref / ours"]
    headers.append("note")
    rows = []
    for r in results:
        cell = {path: timing_text(r.samples[path]) if path in r.samples else "-" for path in
                ("reference", "ours", "views", "floor")}
        row = [r.method, r.phase, r.classes, r.batch, cell["reference"], cell["ours"], cell["views"],
               "-" if r.speedup is None else f"{r.speedup:.2f}x", cell["floor"],
               "-" if r.over_floor is None else f"{r.over_floor:.2f}x",
               _pair(r.kept_bytes)]
        if cuda:
            row += [f"{1 / r.ours_total:.2f}", _pair(r.peak_bytes)]
        row.append(r.note)
        rows.append(row)
    return tabulate(rows, headers=headers, disable_numparse=True)


# ------------------------------------------------------------------------------------------- building

def method_config(method: str, precision: str, config: str = "", recompute_batch: int = 0):
    cfg = get_cfg_default()
    extend_cfg_for_trainers(cfg)
    merge_from_file(cfg, os.path.join(CONFIG_DIR, config or CONFIGS[method]))
    cfg.TRAINER.NAME = method
    cfg.TRAINER[TRAINER_REGISTRY.get(method).CFG_NODE].PREC = precision
    cfg.MODEL.TEXT_RECOMPUTE_BATCH = recompute_batch
    return cfg


class Built:
    """A trainer of ``cfg`` without data: its model on ``device``, its optimizer and its autocast."""

    def __init__(self, cfg, clip_model, names: List[str], device: torch.device, precision: str, seed: int = 0):
        cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
        trainer = cls.__new__(cls)  # the trainer's hooks need only its config, model and device
        trainer.cfg, trainer.device = cfg, device
        trainer.custom_train_transform()  # GOPro: which loader keys hold which view
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = trainer.build_custom_clip(clip_model, names)
        model.text_encoder.recompute_batch = cfg.MODEL.TEXT_RECOMPUTE_BATCH
        learner = model.learnable_module()
        model.requires_grad_(False)
        learner.requires_grad_(True)
        trainer.model = model.to(device)
        self.trainer, self.model, self.learner = trainer, trainer.model, learner
        self.optimizer = build_optimizer(learner, cfg.OPTIM)
        self.precision, self.device = precision, device

    def autocast(self):
        return autocast(self.precision, self.device)

    def loss(self, batch, image, label) -> torch.Tensor:
        with self.autocast():
            return self.trainer.compute_loss(batch, image, label)[0]

    def step(self, batch, image, label) -> None:
        loss = self.loss(batch, image, label)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def raw_images(count: int, resolution: int) -> List[Image.Image]:
    width, height = (round(side * resolution / 224) for side in RAW_ASPECT)
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(count)]


def gradients(params: List[torch.nn.Parameter], loss: torch.Tensor) -> List[torch.Tensor]:
    for p in params:
        p.grad = None
    loss.backward()
    grads = [p.grad.detach().float().clone() for p in params]
    for p in params:
        p.grad = None
    return grads


def assert_same_gradients(ours: List[torch.Tensor], ref: List[torch.Tensor], precision: str, what: str) -> None:
    for a, b in zip(ours, ref):
        error = float((a - b).norm() / b.norm().clamp_min(1e-12))
        if error > GRAD_RTOL[precision]:
            raise AssertionError(f"{what}: relative gradient difference {error:.2e} > {GRAD_RTOL[precision]}")


# ------------------------------------------------------------------------------------------- the cases

class MethodCase:
    """One method at one class count: the paths of its training step and evaluation batch."""

    def __init__(self, method: str, clip_model, classes: int, device, precision: str, eval_batch: int,
                 recompute_batch: int = 0, train_batch: int = 0):
        self.method, self.device, self.precision = method, device, precision
        self.clip_model = clip_model
        self.names = classnames(classes)
        cfg = method_config(method, precision, recompute_batch=recompute_batch)
        if method == "MaPLe":  # the paper's 9 prompted layers, or all of a tiny backbone's
            layers = min(len(clip_model.transformer.resblocks), len(clip_model.visual.transformer.resblocks))
            cfg.TRAINER.MAPLE.PROMPT_DEPTH = min(cfg.TRAINER.MAPLE.PROMPT_DEPTH, layers)
        self.batch_size = train_batch or cfg.DATALOADER.TRAIN_X.BATCH_SIZE
        self.eval_batch = eval_batch
        self.ours = Built(cfg, clip_model, self.names, device, precision)
        resolution = input_resolution(clip_model)
        generator = torch.Generator().manual_seed(0)
        dtype = self.ours.model.dtype
        self.image = torch.randn(self.batch_size, 3, resolution, resolution, generator=generator).to(device, dtype)
        self.label = torch.randint(0, classes, (self.batch_size,), generator=generator).to(device)
        self.test_images = torch.randn(eval_batch, 3, resolution, resolution, generator=generator).to(device, dtype)
        self.batch = {"img": self.image, "label": self.label}
        if method == "GOPro":
            self._gopro_views(resolution, recompute_batch)
        else:
            self.prompts = reference.FullLengthPrompts(self.ours.model.prompt_learner, clip_model)
            ref_cfg = cfg.clone()
            ref_cfg.OPTIM.FUSED = False  # PyTorch's default step, as the official trainers take it
            self.ref_optimizer = build_optimizer(self.ours.learner, ref_cfg.OPTIM)

    def _gopro_views(self, resolution: int, recompute_batch: int) -> None:
        size = (resolution, resolution)
        self.moco = build_mocov3_view(size, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
        self.augmix = build_augmix_view(size, CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)
        self.raw = raw_images(self.batch_size, resolution)
        dtype = self.ours.model.dtype
        views = [v.to(self.device, dtype) for v in self.loader_views()]
        keys = self.ours.trainer.view_keys
        self.batch.update({keys["moco"]: views[0], keys["augmix"]: views[1]})
        self.views = tuple(views)
        official = method_config("GOPro", self.precision, OFFICIAL_GOPRO, recompute_batch)
        self.official = Built(official, self.clip_model, self.names, self.device, self.precision, seed=1)
        g = official.TRAINER.GOPRO
        self.gopro_ref = reference.GOProReference(self.official.model, self.clip_model, self.moco, self.augmix,
                                                  weights=(g.W_CE, g.W_SEM, g.W_CON), temperature=g.CON_TEMPERATURE)
        ref_cfg = official.clone()
        ref_cfg.OPTIM.FUSED = False
        self.ref_optimizer = build_optimizer(self.official.learner, ref_cfg.OPTIM)

    def loader_views(self):
        """The MoCo v3 and AugMix views of the batch as the data loader makes them: from the decoded images."""
        return torch.stack([self.moco(image) for image in self.raw]), torch.stack([self.augmix(image) for image in
                                                                                   self.raw])

    # -- the reference's loss and logits

    def reference_loss(self, views=None) -> torch.Tensor:
        model, clip_model = self.ours.model, self.clip_model
        if self.method == "GOPro":
            return self.gopro_ref.loss(self.image, self.label, views)
        logits_fn = {"CoOp": reference.coop_logits, "CoCoOp": reference.cocoop_logits,
                     "MaPLe": reference.maple_logits}[self.method]
        return F.cross_entropy(logits_fn(model, clip_model, self.prompts, self.image), self.label)

    def reference_logits(self, images: torch.Tensor) -> torch.Tensor:
        if self.method == "GOPro":
            return self.gopro_ref.forward(images)[0]
        logits_fn = {"CoOp": reference.coop_logits, "CoCoOp": reference.cocoop_logits,
                     "MaPLe": reference.maple_logits}[self.method]
        return logits_fn(self.ours.model, self.clip_model, self.prompts, images)

    # -- equality before timing

    def check_training_step(self) -> None:
        what = f"{self.method} training step"
        if self.method == "GOPro":  # the official structure along both paths, on the same views
            built, params = self.official, self._checked_gopro_params(self.official.model)
        else:
            built, params = self.ours, self._checked_params(self.ours.model)
        built.model.train()
        ours_loss = built.loss(self.batch, self.image, self.label)
        ours_grads = gradients(params, ours_loss)
        with built.autocast():
            ref_loss = self.reference_loss(self.views if self.method == "GOPro" else None)
        ref_grads = gradients(params, ref_loss)
        assert_same(ref_loss.detach(), ours_loss.detach(), self.precision, f"{what}: loss")
        assert_same_gradients(ours_grads, ref_grads, self.precision, what)

    def check_evaluation(self) -> None:
        built = self.official if self.method == "GOPro" else self.ours
        built.model.eval()
        with torch.inference_mode(), built.autocast():
            built.model.prepare_inference()
            ours = built.model(self.test_images).float()
            built.model.clear_cache()
            ref = (self.gopro_ref.forward(self.test_images, self.gopro_eval_views())[0] if self.method == "GOPro"
                   else self.reference_logits(self.test_images))
        assert_same(ref.float(), ours, self.precision, f"{self.method} evaluation")

    def gopro_eval_views(self):
        return self.test_images, self.test_images  # any views: the logits use the original only

    @staticmethod
    def _checked_params(model) -> List[torch.nn.Parameter]:
        learner = model.prompt_learner
        params = [learner.ctx]
        if hasattr(learner, "compound_prompts_text"):
            params += list(learner.compound_prompts_text)
        return params

    @staticmethod
    def _checked_gopro_params(model) -> List[torch.nn.Parameter]:
        shared = model.generator("orig")
        return [model.prompt_learner.ctx, shared.style.weight, shared.rho.weight]

    # -- the timed paths

    def train_paths(self, with_reference: bool) -> Dict[str, Callable]:
        ours = self.ours
        ours.model.train()
        paths = {"ours": lambda: ours.step(self.batch, self.image, self.label)}
        if with_reference:
            paths["reference"] = self._reference_step
        if self.method == "GOPro":
            views = (self.image, *(self.batch[ours.trainer.view_keys[view]] for view in ("moco", "augmix")))
            paths["floor"] = lambda: [ours.model.encode_images(v, with_tokens=True) for v in views]
            paths["views"] = self.loader_views
        else:
            paths["floor"] = lambda: self._image_floor(self.image)
        return paths

    def _reference_step(self) -> None:
        model = self.official.model if self.method == "GOPro" else self.ours.model
        model.train()
        with (self.official if self.method == "GOPro" else self.ours).autocast():
            loss = self.reference_loss()
        self.ref_optimizer.zero_grad()
        loss.backward()
        self.ref_optimizer.step()

    def _image_floor(self, images: torch.Tensor):
        model = self.ours.model
        with torch.no_grad():
            if self.method == "MaPLe":
                return model.encode_image(images, visual_prompts=model.prompt_learner.vision_prompts())
            if self.method == "GOPro":
                return model.encode_images(images, with_tokens=True)
            return model.encode_image(images)

    def eval_paths(self, with_reference: bool) -> Dict[str, Callable]:
        ours = self.ours
        ours.model.eval()
        with torch.inference_mode(), ours.autocast():
            ours.model.prepare_inference()  # once per evaluation; the timed batch reuses it

        def ours_batch():
            with torch.inference_mode(), ours.autocast():
                return ours.model(self.test_images)

        def floor():
            with torch.inference_mode(), ours.autocast():
                return self._image_floor(self.test_images)

        paths = {"ours": ours_batch, "floor": floor}
        if with_reference:
            def ref_batch():
                (self.official if self.method == "GOPro" else ours).model.eval()
                with torch.no_grad(), ours.autocast():
                    return self.reference_logits(self.test_images)
            paths["reference"] = ref_batch
        return paths

    # -- memory

    def text_sequences(self, phase: str) -> int:
        """Prompt sequences one text pass of the path encodes (the reference's at 77 tokens)."""
        images = self.batch_size if phase == "train" else self.eval_batch
        per_image = {"CoOp": 0, "MaPLe": 0, "CoCoOp": 1, "GOPro": 3}[self.method]
        return len(self.names) * max(1, images * per_image)

    def predicted_reference_bytes(self, phase: str) -> float:
        """Activations the reference keeps (training) or holds in one call (evaluation), at 77 tokens."""
        per_sequence, _ = sequence_bytes(self.ours.model.text_encoder, 77, self.device)
        if phase == "eval":  # no gradient: one call's working set, about one layer's saved tensors
            calls = {"CoOp": 1, "MaPLe": 1, "CoCoOp": self.eval_batch, "GOPro": 3 * self.eval_batch}[self.method]
            return per_sequence / self.ours.model.text_encoder.num_layers * self.text_sequences(phase) / calls
        return per_sequence * self.text_sequences(phase)

    def predicted_ours_bytes(self) -> float:
        learner = self.ours.model.prompt_learner
        copies = self.text_sequences("train") // len(self.names)
        prediction = text_step_bytes(self.ours.model.text_encoder, learner.tokenized_prompts, copies, self.device,
                                     self.ours.model.text_encoder.recompute_batch,
                                     class_prompt_prefix(learner, learner.tokenized_prompts) or 0)
        return prediction["backward_peak_bytes"]

    def kept_bytes(self) -> Dict[str, int]:
        """Bytes autograd saves in the training step's forward, per path (frozen weights excluded)."""
        weights = list(self.clip_model.parameters())
        kept = {}
        self.ours.model.train()
        kept["ours"], _ = saved_bytes(lambda: self.ours.loss(self.batch, self.image, self.label), exclude=weights)
        return kept

    def kept_reference_bytes(self) -> int:
        weights = list(self.clip_model.parameters())
        built = self.official if self.method == "GOPro" else self.ours
        built.model.train()
        with built.autocast():
            count, _ = saved_bytes(lambda: self.reference_loss(self.views if self.method == "GOPro" else None),
                                   exclude=weights)
        return count


def budget_bytes(device: torch.device, budget_gb: float) -> float:
    if budget_gb > 0:
        return budget_gb * 2**30
    free, _ = torch.cuda.mem_get_info(device)
    return 0.9 * free


def measure_method(case: MethodCase, phase: str, repeats: int, budget: float) -> StepResult:
    notes = []
    predicted = case.predicted_reference_bytes(phase)
    with_reference = predicted <= budget
    if not with_reference:
        notes.append(f"reference skipped: {predicted / 2**30:.1f} GiB predicted")
    batch = case.batch_size if phase == "train" else case.eval_batch
    if phase == "train":
        if with_reference:
            case.check_training_step()
        paths = case.train_paths(with_reference)
    else:
        if with_reference:
            case.check_evaluation()
        paths = case.eval_paths(with_reference)
    result = StepResult(case.method, phase, len(case.names), batch, time_paths(paths, case.device, repeats))
    if phase == "train":
        result.kept_bytes = case.kept_bytes()
        if with_reference:
            result.kept_bytes["reference"] = case.kept_reference_bytes()
    if case.device.type == "cuda":
        for path in ("ours", "reference"):
            if path in paths:
                result.peak_bytes[path] = peak_bytes(paths[path], case.device)
    result.note = "; ".join(notes)
    return result


def preset(device: torch.device, backbone: str) -> dict:
    if device.type == "cuda":
        return PRESETS["cuda"]
    return PRESETS["cpu-vit"] if backbone in OPENAI_SHAPES or backbone.startswith("random-") else PRESETS["cpu-tiny"]


def run(device: str = "cpu", backbone: str = "", precision: str = "", repeats: int = 5, methods=None,
        classes=None, eval_batch: int = 0, train_batch: int = 0, phases=("train", "eval"), recompute_batch: int = 0,
        memory_budget: float = 0.0) -> List[StepResult]:
    device, backbone, precision = resolve(device, backbone, precision)
    if precision == "amp" and device.type == "cpu" and not cpu_has_bf16():
        print("note: this CPU has no bfloat16 instructions; amp's bfloat16 runs emulated (slower than fp32)")
    settings = preset(device, backbone)
    clip_model = build_clip(backbone, device, precision)
    budget = budget_bytes(device, memory_budget or settings["budget_gb"])
    results = []
    for count in classes or settings["classes"]:
        for method in methods or METHODS:
            case = MethodCase(method, clip_model, count, device, precision, eval_batch or settings["eval_batch"],
                              recompute_batch, train_batch)
            for phase in phases:
                results.append(measure_method(case, phase, repeats, budget))
                case.ours.model.clear_cache()
                print(format_steps(results[-1:]).splitlines()[-1], flush=True)
            del case
    return results


def add_arguments(parser) -> None:
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=None, help="default: all four")
    parser.add_argument("--classes", nargs="+", type=int, default=None,
                        help=f"class counts (default per setting: {({k: v['classes'] for k, v in PRESETS.items()})})")
    parser.add_argument("--eval-batch", type=int, default=0, help="test batch (default 100; 10 for ViT-B/16 on CPU)")
    parser.add_argument("--train-batch", type=int, default=0, help="training batch (default: the paper config's)")
    parser.add_argument("--phases", nargs="+", choices=["train", "eval"], default=["train", "eval"])
    parser.add_argument("--recompute-batch", type=int, default=0, help="MODEL.TEXT_RECOMPUTE_BATCH of ours")
    parser.add_argument("--memory-budget", type=float, default=0.0,
                        help="GiB a reference path may keep (default: 3 for tiny on CPU, 6 for ViT-B/16 on CPU, "
                             "90%% of the free GPU memory on CUDA)")


if __name__ == "__main__":
    main(run, __doc__.split("\n")[0], add_arguments=add_arguments, table=format_steps)
