"""What every benchmark shares: the command line, CLIP backbones with random weights, side-by-side timing
and peak-memory measurement of a naive and an optimized path, and the result table.

Timings are ratios measured in one process: the two paths run alternately (naive, optimized, optimized,
naive, ...) after a warm-up, and each one's median is kept, so that a machine that gets busier during
the run slows both alike. Absolute times depend on the machine and are printed only for information.
"""
import argparse
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from tabulate import tabulate

from promptlearn.modeling.backbones import build_tiny_clip, get_backbone_spec
from promptlearn.modeling.clip_compat import clip

#: OpenAI's hyper-parameters for the CLIP models benchmarked with random weights (no checkpoint needed:
#: the cost of a forward pass does not depend on the values of the weights)
OPENAI_SHAPES = {
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                     transformer_layers=12),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                     transformer_layers=12),
}
DEFAULT_BACKBONE = {"cpu": "tiny-ViT", "cuda": "ViT-B/16"}

#: class names of varied token lengths (ImageNet, Caltech101, Oxford Flowers, Stanford Cars, FGVC Aircraft),
#: repeated to make as many classes as a benchmark needs
CLASSNAMES = [
    "tench", "goldfish", "great white shark", "tiger shark", "hammerhead shark", "electric ray", "stingray",
    "rooster", "hen", "ostrich", "brambling", "goldfinch", "house finch", "junco", "indigo bunting",
    "American robin", "bulbul", "jay", "magpie", "chickadee", "American dipper", "kite (bird of prey)",
    "bald eagle", "vulture", "great grey owl", "fire salamander", "smooth newt", "eft", "spotted salamander",
    "axolotl", "accordion", "airplane", "anchor", "ant", "barrel", "bass", "beaver", "binocular", "bonsai",
    "brain", "brontosaurus", "buddha", "butterfly", "camera", "cannon", "car side", "ceiling fan", "cellphone",
    "chair", "chandelier", "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea",
    "english marigold", "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle",
    "2012 Audi S5 Coupe", "2012 BMW M3 Coupe", "2007 Chevrolet Express Cargo Van", "2012 Tesla Model S Sedan",
    "1998 Eagle Talon Hatchback", "2009 Spyker C8 Convertible", "Boeing 737-800", "Airbus A320", "Cessna 172",
    "Dassault Falcon 2000", "de Havilland DHC-8-300", "McDonnell Douglas DC-10", "Tupolev Tu-154",
]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def spread(samples: Sequence[float]) -> float:
    """Half the range of ``samples`` relative to their median (0.05: every run within about +/-5%)."""
    return (max(samples) - min(samples)) / 2 / statistics.median(samples)


@dataclass
class Result:
    """One row of the table: a case measured along both paths (seconds of every timed run)."""

    case: str
    detail: str
    naive_samples: List[float]
    optimized_samples: List[float]
    naive_bytes: Optional[int] = None
    optimized_bytes: Optional[int] = None

    @property
    def naive_s(self) -> float:
        return median(self.naive_samples)

    @property
    def optimized_s(self) -> float:
        return median(self.optimized_samples)

    @property
    def speedup(self) -> float:
        return self.naive_s / self.optimized_s

    @property
    def memory_ratio(self) -> Optional[float]:
        if not self.naive_bytes or not self.optimized_bytes:
            return None
        return self.naive_bytes / self.optimized_bytes

    def to_json(self) -> dict:
        return {**asdict(self), "naive_s": self.naive_s, "optimized_s": self.optimized_s, "speedup": self.speedup,
                "memory_ratio": self.memory_ratio}


def parse_args(description: str, argv=None, add_arguments: Optional[Callable] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--backbone", default="",
                        help=f"a tiny backbone ({', '.join(n for n in tiny_names())}) or an OpenAI shape with random "
                             f"weights ({', '.join(OPENAI_SHAPES)}); default {DEFAULT_BACKBONE}")
    parser.add_argument("--precision", default="", choices=["", "fp16", "fp32", "amp"],
                        help="fp16 (CLIP's weights, the default on CUDA), fp32 (the default on CPU) or amp (fp32 "
                             "weights under autocast: fp16 on CUDA, bfloat16 on a CPU; whole steps only)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each path (the median is kept)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default: torch's choice); 1 gives steadier CPU timings on a "
                             "machine that other work shares")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.device == "cpu" and args.precision == "fp16":
        parser.error("--precision fp16 needs --device cuda")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def tiny_names() -> List[str]:
    from promptlearn.modeling.backbones import BACKBONES

    return [name for name, spec in BACKBONES.items() if spec.is_tiny and spec.arch == "vit"]


def resolve(device: str, backbone: str = "", precision: str = ""):
    """(torch.device, backbone name, precision) with the defaults filled in."""
    device = torch.device(device)
    backbone = backbone or DEFAULT_BACKBONE[device.type]
    precision = precision or ("fp16" if device.type == "cuda" else "fp32")
    return device, backbone, precision


def build_clip(backbone: str, device: torch.device, precision: str) -> torch.nn.Module:
    """OpenAI's CLIP with random (seeded) weights, frozen, in eval mode, on ``device``."""
    if backbone in OPENAI_SHAPES:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = clip.model.CLIP(**OPENAI_SHAPES[backbone])
    else:
        spec = get_backbone_spec(backbone)
        if not spec.is_tiny or spec.arch != "vit":
            raise SystemExit(f"--backbone {backbone}: use one of {tiny_names()} or {list(OPENAI_SHAPES)}")
        model = build_tiny_clip(spec)
    if precision == "fp16":
        clip.model.convert_weights(model)
    else:
        model.float()
    return model.to(device).eval().requires_grad_(False)


def input_resolution(clip_model: torch.nn.Module) -> int:
    return clip_model.visual.input_resolution


def classnames(count: int) -> List[str]:
    return [CLASSNAMES[i % len(CLASSNAMES)] for i in range(count)]


def tolerances(precision: str) -> dict:
    """Of the equality checks: fp32; fp16 (11 significant bits); amp (bfloat16's 8 on a CPU)."""
    return {"fp32": dict(rtol=1e-4, atol=1e-4), "fp16": dict(rtol=2e-2, atol=2e-2)}.get(precision,
                                                                                        dict(rtol=6e-2, atol=6e-2))


def assert_same(naive: torch.Tensor, optimized: torch.Tensor, precision: str, what: str) -> None:
    """The optimized path must compute what the naive one does, before either is timed."""
    try:
        torch.testing.assert_close(optimized.float(), naive.float(), **tolerances(precision))
    except AssertionError as err:
        raise AssertionError(f"{what}: the optimized path differs from the naive one\n{err}") from None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_paths(paths: Dict[str, Callable], device: torch.device, repeats: int, warm_up: bool = True,
               first_round: int = 0) -> Dict[str, List[float]]:
    """Seconds of every timed run of each path: one warm-up call each, then ``repeats`` rounds in which the
    paths take turns, the order rotating and reversing from round to round (naive, optimized, optimized,
    naive, ... for two), so that a machine getting busier or quieter during the run affects all alike.
    ``first_round``: the number of the first round (to continue an order across calls)."""
    names = list(paths)
    if warm_up:
        for name in names:
            paths[name]()
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(first_round, first_round + repeats):
        shift = i % len(names)
        order = names[shift:] + names[:shift]
        if (i // len(names)) % 2:
            order.reverse()
        for name in order:
            _synchronize(device)
            start = time.perf_counter()
            paths[name]()
            _synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return samples


def time_pair(naive: Callable, optimized: Callable, device: torch.device, repeats: int):
    """Seconds of every timed run of ``naive()`` and of ``optimized()``, alternating (``time_paths``)."""
    samples = time_paths({"naive": naive, "optimized": optimized}, device, repeats)
    return samples["naive"], samples["optimized"]


def peak_bytes(fn: Callable, device: torch.device) -> Optional[int]:
    """Memory ``fn()`` allocates at its peak on a CUDA device, beyond what was allocated before (None on CPU)."""
    if device.type != "cuda":
        return None
    _synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    _synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def measure(case: str, detail: str, naive: Callable, optimized: Callable, device: torch.device,
            repeats: int) -> Result:
    naive_s, optimized_s = time_pair(naive, optimized, device, repeats)
    return Result(case, detail, naive_s, optimized_s, peak_bytes(naive, device), peak_bytes(optimized, device))


def _time_text(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.3f} s"


def timing_text(samples: Sequence[float]) -> str:
    """Median and spread of a path's runs, e.g. "12.31 ms ±4%"."""
    return f"{_time_text(median(samples))} ±{spread(samples) * 100:.0f}%"


def size_text(count: Optional[float]) -> str:
    """Bytes as "12.06 GiB" or "35.2 MiB"; "-" for None."""
    if count is None:
        return "-"
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def format_table(results: List[Result]) -> str:
    show_memory = any(r.memory_ratio is not None for r in results)
    headers = ["case", "naive", "optimized", "speed-up"]
    if show_memory:
        headers += ["naive peak", "optimized peak", "memory ratio"]
    headers.append("setting")
    rows = []
    for r in results:
        row = [r.case, timing_text(r.naive_samples), timing_text(r.optimized_samples), f"{r.speedup:.2f}x"]
        if show_memory:
            ratio = "-" if r.memory_ratio is None else f"{r.memory_ratio:.2f}x"
            row += [size_text(r.naive_bytes), size_text(r.optimized_bytes), ratio]
        row.append(r.detail)
        rows.append(row)
    return tabulate(rows, headers=headers, disable_numparse=True)


def machine_load() -> str:
    """The 1-minute load average against the CPU count (other processes compete for the cores)."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def describe(device: torch.device, backbone: str, precision: str, repeats: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} torch thread(s)"
    weights = "random weights, OpenAI's shapes" if backbone in OPENAI_SHAPES else "tiny, seeded random weights"
    return (f"device: {name}; backbone: {backbone} ({weights}); precision: {precision}; "
            f"median of {repeats} alternating runs per path; torch {torch.__version__}; {machine_load()}")


def write_json(path: str, header: str, results: list) -> None:
    with open(path, "w") as f:
        json.dump({"setting": header, "load_after": machine_load(), "results": [r.to_json() for r in results]},
                  f, indent=1)


def main(run: Callable, description: str, argv=None, add_arguments: Optional[Callable] = None,
         table: Callable = format_table) -> list:
    """Command line of one benchmark module: parse, run, print the table (and write it as JSON).

    ``add_arguments(parser)`` adds the module's own options; their values are passed to ``run`` by name.
    """
    args = parse_args(description, argv, add_arguments)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, backbone, precision = resolve(args.device, args.backbone, args.precision)
    header = describe(device, backbone, precision, args.repeats)
    print(header)
    common = {"device", "backbone", "precision", "repeats", "threads", "json"}
    extra = {key: value for key, value in vars(args).items() if key not in common}
    results = run(device=args.device, backbone=backbone, precision=precision, repeats=args.repeats, **extra)
    print(table(results))
    print(f"after the run: {machine_load()}")
    if args.json:
        write_json(args.json, header, results)
    return results
