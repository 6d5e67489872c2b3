"""The paper's tables and Figure 2 from the ``results.json`` files under an output root, next to the published
numbers; printed, and with ``--out-dir DIR`` also written as ``DIR/<slug>.md``, ``.csv`` and ``.png`` per table.

    python scripts/make_tables.py [OUTPUT] [--tables b2n xd dg ablation figure2] [--format github|simple|csv|...]
                                  [--out-dir DIR]

Runs are found by the folder layout the scripts in ``scripts/`` write (``base2new/``, ``imagenet/``,
``evaluation/`` and the zero-shot ``<Trainer>/<CFG>/<base|new|all>/<DATASET>``). A table row is a trainer
and its config name without the epoch count (``_ep<N>``), so CoOp's ImageNet config ``vit_b16_ep50_ctxv1``
joins its ``vit_b16_ctxv1`` row; configs ending in ``_loss_<row>`` are the runs of Table 3 and configs ending
in ``_nctx<N>`` the runs of Figure 2 (N prompt tokens).

Numbers: a cell is the mean ± population std over seeds; a base-to-new HM is the harmonic mean of the mean
Base and New; the 11-dataset average row averages Base and New over the datasets and its HM is the HM of
those averages; the cross-dataset Average is the mean over the 10 targets (ImageNet excluded). An average's
std is the std over seeds of the per-seed averages. Missing runs show as "-" and are counted under each table.
"""
import argparse
import csv
import io
import json
import math
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from tabulate import tabulate, tabulate_formats

from ..utils.tools import atomic_write
from . import paper_results as paper

DATASET_NAMES = {
    "imagenet": "ImageNet", "caltech101": "Caltech101", "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars", "oxford_flowers": "Flowers102", "food101": "Food101",
    "fgvc_aircraft": "FGVCAircraft", "sun397": "SUN397", "dtd": "DTD", "eurosat": "EuroSAT", "ucf101": "UCF101",
    "imagenetv2": "ImageNetV2", "imagenet_sketch": "ImageNet-Sketch", "imagenet_a": "ImageNet-A",
    "imagenet_r": "ImageNet-R",
}
B2N_DATASETS = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101"]
XD_TARGETS = B2N_DATASETS[1:]
DG_TARGETS = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
TRAINER_ORDER = ["ZeroshotCLIP", "ZeroshotCLIP2", "SLIP", "CoOp", "CoCoOp", "MaPLe", "GOPro"]
ABLATION_ROWS = [("ce", "L_ce"), ("ce_con", "L_ce + L_con"), ("ce_sem1", "L_ce + L_sem(x1)"),
                 ("ce_sem2", "L_ce + L_sem(x2)"), ("ce_sem12", "L_ce + L_sem(x1 + x2)"),
                 ("full", "L_ce + L_sem + L_con")]
ABLATION_SUFFIX = re.compile(r"^(?P<base>.+)_loss_(?P<row>ce|ce_con|ce_sem1|ce_sem2|ce_sem12)$")
NCTX_SUFFIX = re.compile(r"^(?P<base>.+)_nctx(?P<n>\d+)$")
TABLES = ("b2n", "xd", "dg", "ablation", "figure2")
#: Figure 2's markers, as in the paper's legend (diamond Base, triangle New, circle H)
FIGURE2_SERIES = (("Base", "D"), ("New", "^"), ("H", "o"))
#: which protocol a kind of run belongs to (a method's seeds are counted per protocol)
PROTOCOL = {"base": "b2n", "new": "b2n", "source": "transfer", "target": "transfer"}
EXPECTED_CLASSES = {"base": "base", "new": "new", "source": "all", "target": "all"}

_SEED = re.compile(r"^seed(\d+)$")
_SHOTS_DIR = re.compile(r"^shots_(\d+)$")
_CFG_SHOTS = re.compile(r"^(.+)_(\d+)shots$")


@dataclass(frozen=True)
class Run:
    """One finished run: its test accuracy and where the layout places it."""

    kind: str  # "base", "new" (base-to-new), "source" (ImageNet model), "target" (transfer evaluation)
    trainer: str
    cfg: str  # the config name of the folder (with the TAG suffix, if any)
    dataset: str
    seed: Optional[int]  # None for zero-shot CLIP
    shots: Optional[int]  # None for zero-shot CLIP
    accuracy: float
    path: str


@dataclass(frozen=True)
class Method:
    """A table row: a trainer and its config name without the epoch count."""

    trainer: str
    family: str

    def sort_key(self) -> tuple:
        known = self.trainer in TRAINER_ORDER
        return (not known, TRAINER_ORDER.index(self.trainer) if known else 0, self.trainer, self.family)


@dataclass(frozen=True)
class Estimate:
    """A mean over runs; ``std`` is None for a single run; ``complete`` is False when seeds are missing."""

    mean: float
    std: Optional[float]
    n: int
    complete: bool = True


def config_family(cfg: str) -> str:
    """``vit_b16_ep50_ctxv1`` -> ``vit_b16_ctxv1``: configs that differ in their epoch count share a row."""
    return re.sub(r"_ep\d+(?=_|$)", "", cfg)


def dataset_name(stem: str) -> str:
    return DATASET_NAMES.get(stem, stem)


def harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b else 0.0


def classify(parts: Sequence[str]) -> Optional[tuple]:
    """(kind, trainer, cfg, dataset, seed, shots) of a run folder, from its path below the output root."""
    n = len(parts)
    if n == 7 and parts[0] == "base2new" and parts[1] in ("train_base", "test_new"):
        shots, seed = _SHOTS_DIR.match(parts[3]), _SEED.match(parts[6])
        if shots and seed:
            kind = "base" if parts[1] == "train_base" else "new"
            return kind, parts[4], parts[5], parts[2], int(seed.group(1)), int(shots.group(1))
    if n == 4 and parts[0] == "imagenet":
        cfg, seed = _CFG_SHOTS.match(parts[2]), _SEED.match(parts[3])
        if cfg and seed:
            return "source", parts[1], cfg.group(1), "imagenet", int(seed.group(1)), int(cfg.group(2))
    if n == 5 and parts[0] == "evaluation":
        cfg, seed = _CFG_SHOTS.match(parts[2]), _SEED.match(parts[4])
        if cfg and seed:
            return "target", parts[1], cfg.group(1), parts[3], int(seed.group(1)), int(cfg.group(2))
    if n == 4 and parts[2] in ("base", "new", "all"):
        kind = parts[2] if parts[2] != "all" else ("source" if parts[3] == "imagenet" else "target")
        return kind, parts[0], parts[1], parts[3], None, None
    return None


def collect_runs(root: str, shots: int = 16) -> Tuple[List[Run], List[str]]:
    """Every finished run under ``root`` trained with ``shots`` shots (zero-shot runs too), and warnings."""
    runs, warnings = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if "results.json" not in filenames:
            continue
        where = classify(os.path.relpath(dirpath, root).split(os.sep))
        if where is None:
            continue
        kind, trainer, cfg, dataset, seed, run_shots = where
        if run_shots is not None and run_shots != shots:
            continue
        path = os.path.join(dirpath, "results.json")
        try:
            with open(path) as f:
                results = json.load(f)
            accuracy = float(results["test"]["accuracy"])
        except (OSError, ValueError, KeyError, TypeError):
            warnings.append(f"{path}: no test accuracy (unfinished run?); counted as missing")
            continue
        classes = (results.get("run") or {}).get("subsample_classes")
        if classes is not None and classes != EXPECTED_CLASSES[kind]:
            warnings.append(f"{path}: evaluated on the {classes} classes, but its folder says {kind}")
        runs.append(Run(kind, trainer, cfg, dataset, seed, run_shots, accuracy, path))
    return runs, warnings


class Results:
    """Runs indexed by method, kind and dataset, with the seeds each method is expected to have."""

    def __init__(self, runs: Iterable[Run], seeds: Optional[Sequence[int]] = None):
        self.values: Dict[tuple, Dict[Optional[int], float]] = defaultdict(dict)
        self.configs: Dict[Method, Set[str]] = defaultdict(set)
        self.found_seeds: Dict[tuple, Set[Optional[int]]] = defaultdict(set)
        self.seeds = set(seeds) if seeds else None
        for run in runs:
            method = Method(run.trainer, config_family(run.cfg))
            self.values[(method, run.kind, run.dataset)][run.seed] = run.accuracy
            self.configs[method].add(run.cfg)
            self.found_seeds[(method, PROTOCOL[run.kind])].add(run.seed)

    def methods(self, kinds: Sequence[str]) -> List[Method]:
        found = {m for (m, kind, _) in self.values if kind in kinds}
        return sorted(found, key=Method.sort_key)

    def datasets(self, kinds: Sequence[str], methods: Sequence[Method]) -> Set[str]:
        return {d for (m, kind, d) in self.values if kind in kinds and m in methods}

    def expected_seeds(self, method: Method, kind: str) -> Set[Optional[int]]:
        """The seeds ``--seeds`` names, else those of the method's runs in the protocol of ``kind``."""
        found = self.found_seeds.get((method, PROTOCOL[kind]), set())
        if None in found:  # zero-shot: one run, no seed
            return {None}
        return set(self.seeds) if self.seeds else found

    def estimate(self, method: Method, kind: str, dataset: str) -> Optional[Estimate]:
        values = self.values.get((method, kind, dataset))
        if not values:
            return None
        accs = list(values.values())
        mean = sum(accs) / len(accs)
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs)) if len(accs) > 1 else None
        return Estimate(mean, std, len(accs), complete=self.expected_seeds(method, kind) <= set(values))

    def average(self, method: Method, kind: str, datasets: Sequence[str]) -> Optional[Estimate]:
        """The mean over ``datasets`` of their means (None unless all are there); std over per-seed averages."""
        estimates = [self.estimate(method, kind, d) for d in datasets]
        if not datasets or any(e is None for e in estimates):
            return None
        per_dataset = [self.values[(method, kind, d)] for d in datasets]
        common = set.intersection(*(set(v) for v in per_dataset))
        per_seed = [sum(v[s] for v in per_dataset) / len(datasets) for s in common]
        std = None
        if len(per_seed) > 1:
            m = sum(per_seed) / len(per_seed)
            std = math.sqrt(sum((a - m) ** 2 for a in per_seed) / len(per_seed))
        mean = sum(e.mean for e in estimates) / len(estimates)
        return Estimate(mean, std, len(common), complete=all(e.complete for e in estimates))

    def missing(self, methods: Sequence[Method], kinds: Sequence[str], datasets: Sequence[str],
                labels: Dict[Method, str], expected: Optional[Set[Optional[int]]] = None) -> List[str]:
        """The runs a table lacks, as "<label> <dataset> <kind> seed<S>" (``expected`` overrides the seeds)."""
        out = []
        for method in methods:
            for dataset in datasets:
                for kind in kinds:
                    have = set(self.values.get((method, kind, dataset), {}))
                    want = self.expected_seeds(method, kind) if expected is None else expected
                    for seed in sorted(want - have, key=lambda s: -1 if s is None else s):
                        where = f"{labels[method]} {dataset} {kind}"
                        out.append(where if seed is None else f"{where} seed{seed}")
        return out


# -- cells and rendering ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delta:
    value: float


Cell = Union[Estimate, float, Delta, str, None]


def cell_text(cell: Cell) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, Estimate):
        text = f"{cell.mean:.2f}" if cell.std is None else f"{cell.mean:.2f} ± {cell.std:.2f}"
        return text if cell.complete else text + " *"
    if isinstance(cell, Delta):
        return f"{round(cell.value, 2) or 0.0:+.2f}"  # no "-0.00"
    if isinstance(cell, float):
        return f"{cell:.2f}"
    return str(cell)


@dataclass
class Series:
    """One bar colour or one line of a chart: a value per group (None: missing), its std, the published value."""

    label: str
    values: List[Optional[float]]
    errors: List[Optional[float]]
    published: List[Optional[float]]
    marker: str = ""


@dataclass
class Panel:
    title: str
    groups: List[str]  # bar groups, or the x values of a line chart
    series: List[Series]


@dataclass
class Chart:
    """What a table's picture shows: ``bars`` (grouped bars, published values as black ticks) or ``lines``."""

    kind: str
    panels: List[Panel]
    xlabel: str = ""
    ylabel: str = "accuracy (%)"
    columns: int = 1  # panels per row


@dataclass
class Table:
    title: str
    headers: List[str]
    rows: List[List[Cell]]
    notes: List[str]
    slug: str = ""  # file name of the table's .md, .csv and .png
    chart: Optional[Chart] = None


def mean_std(cell: Cell) -> Tuple[Optional[float], Optional[float]]:
    """A cell's value and std for a chart (None for a missing or non-numeric cell)."""
    if isinstance(cell, Estimate):
        return cell.mean, cell.std
    if isinstance(cell, float):
        return cell, None
    return None, None


def series_of(label: str, cells: Sequence[Cell], published: Sequence[Optional[float]], marker: str = "") -> Series:
    parts = [mean_std(c) for c in cells]
    return Series(label, [v for v, _ in parts], [e for _, e in parts], list(published), marker)


def render(table: Table, fmt: str) -> str:
    if fmt == "csv":
        return render_csv(table)
    tablefmt = "github" if fmt == "markdown" else fmt
    body = tabulate([[cell_text(c) for c in row] for row in table.rows], headers=table.headers,
                    tablefmt=tablefmt, disable_numparse=True, stralign="right")
    return "\n".join([table.title, "", body, *table.notes])


def render_csv(table: Table) -> str:
    """Numbers as numbers: a column of mean ± std becomes two columns, ``<name>`` and ``<name> std``."""
    stat_cols = {i for row in table.rows for i, c in enumerate(row) if isinstance(c, Estimate)}
    headers = []
    for i, h in enumerate(table.headers):
        headers += [h, f"{h} std"] if i in stat_cols else [h]
    out = io.StringIO()
    out.write(f"# {table.title}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in table.rows:
        line = []
        for i, c in enumerate(row):
            if isinstance(c, Estimate):
                text = [f"{c.mean:.4f}", "" if c.std is None else f"{c.std:.4f}"]
            elif isinstance(c, Delta):
                text = [f"{c.value:.4f}"]
            elif isinstance(c, float):
                text = [f"{c:.4f}"]
            else:
                text = ["" if c is None else str(c)]
            line += text + ([""] if i in stat_cols and not isinstance(c, Estimate) else [])
        writer.writerow(line)
    out.writelines(f"# {note}\n" for note in table.notes)
    return out.getvalue().rstrip("\n")


# -- the tables ------------------------------------------------------------------------------------------

def method_labels(methods: Sequence[Method]) -> Dict[Method, str]:
    """The trainer's name, plus the config when a trainer has several rows in the table."""
    count = defaultdict(int)
    for m in methods:
        count[m.trainer] += 1
    return {m: m.trainer if count[m.trainer] == 1 else f"{m.trainer} ({m.family})" for m in methods}


def delta(ours: Optional[float], published: Optional[float]) -> Optional[Delta]:
    return None if ours is None or published is None else Delta(ours - published)


def mean_of(cell: Optional[Estimate]) -> Optional[float]:
    return None if cell is None else cell.mean


def b2n_cells(base: Optional[Estimate], new: Optional[Estimate], published: Optional[tuple]) -> List[Cell]:
    hm = harmonic_mean(base.mean, new.mean) if base is not None and new is not None else None
    pb, pn, ph = published if published else (None, None, None)
    return [base, new, hm, pb, pn, ph, delta(mean_of(base), pb), delta(mean_of(new), pn), delta(hm, ph)]


B2N_HEADERS = ["Base", "New", "HM", "Base (paper)", "New (paper)", "HM (paper)", "Δ Base", "Δ New", "Δ HM"]


def ordered(datasets: Iterable[str], order: Sequence[str]) -> List[str]:
    datasets = set(datasets)
    return [d for d in order if d in datasets] + sorted(datasets - set(order))


def common_notes(results: Results, methods: Sequence[Method], missing: List[str], rows: List[List[Cell]],
                 labels: Dict[Method, str]) -> List[str]:
    notes = ["Configs: " + "; ".join(f"{labels[m]} = {', '.join(sorted(results.configs[m]))}" for m in methods
                                     if results.configs[m])]
    if any(isinstance(c, Estimate) and not c.complete for row in rows for c in row):
        notes.append("* fewer seeds than expected (those of the method's other runs, or --seeds)")
    notes.append(f"Missing runs: {len(missing)}" + (f" ({summarize_missing(missing, labels.values())})"
                                                    if missing else ""))
    if any(m.trainer == "SLIP" for m in methods):
        notes.append(paper.SLIP_NOTE)
    return notes


def summarize_missing(missing: List[str], labels: Iterable[str], shown: int = 3) -> str:
    """"CoOp: 20 (dtd base seed1, dtd new seed1, eurosat base seed1, ...); MaPLe: 1 (eurosat new seed3)"."""
    parts = []
    for label in labels:
        mine = [m[len(label) + 1:] for m in missing if m.startswith(label + " ")]
        if mine:
            more = ", ..." if len(mine) > shown else ""
            parts.append(f"{label}: {len(mine)} ({', '.join(mine[:shown])}{more})")
    return "; ".join(parts)


def is_ablation(method: Method) -> bool:
    return ABLATION_SUFFIX.match(method.family) is not None


def is_sweep_point(method: Method) -> bool:
    """A run of Table 3's ablation or of Figure 2's token sweep: not a method row of the other tables."""
    return is_ablation(method) or NCTX_SUFFIX.match(method.family) is not None


def slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", "_".join(parts).lower()).strip("_")


def b2n_tables(results: Results, shots: int = 16) -> List[Table]:
    methods = [m for m in results.methods(("base", "new")) if not is_sweep_point(m)]
    if not methods:
        return []
    labels = method_labels(methods)
    datasets = ordered(results.datasets(("base", "new"), methods), B2N_DATASETS)
    missing = results.missing(methods, ("base", "new"), datasets, labels)

    rows = []
    for d in datasets:
        for m in methods:
            published = paper.B2N.get(paper.PAPER_METHOD.get(m.trainer, ""), {}).get(d)
            rows.append([dataset_name(d), labels[m],
                         *b2n_cells(results.estimate(m, "base", d), results.estimate(m, "new", d), published)])
    per_dataset = Table(f"Base-to-new generalization per dataset ({shots} shots)", ["Dataset", "Method", *B2N_HEADERS],
                        rows, [], slug="b2n_per_dataset")
    per_dataset.notes = common_notes(results, methods, missing, rows, labels)
    if any(m.trainer == "CoCoOp" for m in methods) and "oxford_flowers" in datasets:
        per_dataset.notes.append(paper.FLOWERS_COCOOP_NOTE)
    names = [dataset_name(d) for d in datasets]
    per_dataset.chart = Chart("bars", [
        Panel(metric, names, [series_of(labels[m], [row[2 + k] for row in rows if row[1] == labels[m]],
                                        [row[5 + k] for row in rows if row[1] == labels[m]]) for m in methods])
        for k, metric in enumerate(("Base", "New", "HM"))])

    found = len([d for d in datasets if d in B2N_DATASETS])
    if not found:  # only datasets of one's own (e.g. the demo's): no average of the paper's 11 to show
        return [per_dataset]
    avg_rows = []
    for m in methods:
        published = paper.B2N_AVERAGE.get(paper.PAPER_METHOD.get(m.trainer, ""))
        avg_rows.append([labels[m], *b2n_cells(results.average(m, "base", B2N_DATASETS),
                                               results.average(m, "new", B2N_DATASETS), published)])
    average = Table("Table 1: base-to-new generalization, average over the 11 datasets", ["Method", *B2N_HEADERS],
                    avg_rows, [], slug="table1_b2n_average")
    average.notes = [f"HM = harmonic mean of the average Base and New; an average needs all 11 datasets "
                     f"({found} found)."]
    average.chart = Chart("bars", [Panel("", ["Base", "New", "HM"],
                                         [series_of(row[0], row[1:4], row[4:7]) for row in avg_rows])])
    return [per_dataset, average]


def transfer_table(results: Results, title: str, name: str, targets: Sequence[str],
                   average_over: Optional[Sequence[str]], published: Dict[str, Dict[str, float]],
                   other_targets: bool) -> Optional[Table]:
    """ImageNet (the source) and the targets found (with ``other_targets``, also datasets of no paper table);
    for each method one row of ours, one of the paper's numbers and one of the differences."""
    def shown(datasets: Set[str]) -> Set[str]:
        known = set(DATASET_NAMES) - {"imagenet"}
        return {d for d in datasets if d in targets or (other_targets and d not in known and d != "imagenet")}

    methods = [m for m in results.methods(("target",)) if not is_sweep_point(m)
               and shown(results.datasets(("target",), [m]))]
    if not methods:
        return None
    labels = method_labels(methods)
    columns = ["imagenet", *ordered(shown(results.datasets(("target",), methods)), targets)]
    headers = ["Method", *(dataset_name(d) for d in columns)] + (["Average"] if average_over else [])
    rows, series = [], []
    for m in methods:
        ours = [results.estimate(m, "source" if d == "imagenet" else "target", d) for d in columns]
        if average_over:
            ours.append(results.average(m, "target", average_over))
        rows.append([labels[m], *ours])
        pub = published.get(paper.PAPER_METHOD.get(m.trainer, ""))
        pub_row = [None] * len(ours)
        if pub:
            pub_row = [pub.get(d) for d in columns] + ([pub.get("average")] if average_over else [])
            rows.append(["  paper", *pub_row])
            rows.append(["  Δ", *(delta(mean_of(o), p) for o, p in zip(ours, pub_row))])
        series.append(series_of(labels[m], ours, pub_row))
    missing = (results.missing(methods, ("source",), ["imagenet"], labels)
               + results.missing(methods, ("target",), columns[1:], labels))
    notes = common_notes(results, methods, missing, rows, labels)
    return Table(title, headers, rows, notes, slug=name, chart=Chart("bars", [Panel("", headers[1:], series)]))


def ablation_tables(results: Results) -> List[Table]:
    """Table 3 for every GOPro config that has runs of the ablation rows."""
    families = sorted({ABLATION_SUFFIX.match(m.family).group("base") for m in results.methods(("base", "new"))
                       if m.trainer == "GOPro" and is_ablation(m)})
    tables = []
    for base in families:
        rows, methods, labels = [], [], {}
        for row, label in ABLATION_ROWS:
            m = Method("GOPro", base if row == "full" else f"{base}_loss_{row}")
            methods.append(m)
            labels[m] = label
            rows.append([label, *b2n_cells(results.average(m, "base", B2N_DATASETS),
                                           results.average(m, "new", B2N_DATASETS), paper.ABLATION[row])])
        datasets = ordered(results.datasets(("base", "new"), methods), B2N_DATASETS)
        seeds = set.union(*(results.expected_seeds(m, "base") for m in methods))
        missing = results.missing(methods, ("base", "new"), datasets, labels, expected=seeds)
        notes = common_notes(results, methods, missing, rows, labels)
        notes.append("x1 = the MoCo v3 view, x2 = the AugMix view; an average needs all 11 datasets.")
        chart = Chart("bars", [Panel("", [row[0] for row in rows],
                                     [series_of(metric, [row[1 + k] for row in rows], [row[4 + k] for row in rows])
                                      for k, metric in enumerate(("Base", "New", "HM"))])])
        tables.append(Table(f"Table 3: GOPro loss ablation ({base}), base-to-new average over the 11 datasets",
                            ["Losses", *B2N_HEADERS], rows, notes, slug=slug("table3_ablation", base), chart=chart))
    return tables


def prompt_token_tables(results: Results) -> List[Table]:
    """Figure 2 for every trainer and config with runs of the token sweep (folders ``<CFG>_nctx<N>``): Base, New
    and HM per dataset and number of tokens, and their average over the datasets found when there are several."""
    sweeps: Dict[Tuple[str, str], Dict[int, Method]] = defaultdict(dict)
    for m in results.methods(("base", "new")):
        match = NCTX_SUFFIX.match(m.family)
        if match:
            sweeps[(m.trainer, match.group("base"))][int(match.group("n"))] = m
    tables = []
    for (trainer, base), by_count in sorted(sweeps.items()):
        counts = sorted(by_count)
        methods = [by_count[n] for n in counts]
        labels = {by_count[n]: f"{n} tokens" for n in counts}
        datasets = ordered(results.datasets(("base", "new"), methods), B2N_DATASETS)
        groups = [(dataset_name(d), d) for d in datasets]  # (name, dataset); None: the average over them
        if len(datasets) > 1:
            groups.insert(0, (f"Average over {len(datasets)} datasets", None))
        rows, panels = [], []
        for name, dataset in groups:
            cells = []
            for n in counts:
                base_est, new_est = (results.estimate(by_count[n], kind, dataset) if dataset else
                                     results.average(by_count[n], kind, datasets) for kind in ("base", "new"))
                hm = harmonic_mean(base_est.mean, new_est.mean) if base_est and new_est else None
                cells.append([base_est, new_est, hm])
                rows.append([name, str(n), base_est, new_est, hm])
            panels.append(Panel(name, [str(n) for n in counts],
                                [series_of(label, [c[k] for c in cells], [None] * len(counts), marker)
                                 for k, (label, marker) in enumerate(FIGURE2_SERIES)]))
        seeds = set.union(*(results.expected_seeds(m, "base") for m in methods))
        missing = results.missing(methods, ("base", "new"), datasets, labels, expected=seeds)
        notes = common_notes(results, methods, missing, rows, labels)
        notes.append("An average is shown only for the token counts run on every dataset found; the paper's "
                     "Figure 2 publishes no values to compare with.")
        chart = Chart("lines", panels, xlabel="prompt tokens (N_CTX)", columns=min(len(panels), 4))
        tables.append(Table(f"Figure 2: sensitivity to the number of prompt tokens ({trainer}, {base}), base-to-new",
                            ["Dataset", "Tokens", "Base", "New", "HM"], rows, notes,
                            slug=slug("figure2_prompt_tokens", trainer, base), chart=chart))
    return tables


def build_tables(results: Results, which: Sequence[str] = TABLES, shots: int = 16) -> List[Table]:
    tables: List[Table] = []
    if "b2n" in which:
        tables += b2n_tables(results, shots)
    if "xd" in which:
        tables.append(transfer_table(results, f"Cross-dataset transfer (source ImageNet, {shots} shots)",
                                     "cross_dataset", XD_TARGETS, XD_TARGETS, paper.CROSS_DATASET, other_targets=True))
    if "dg" in which:
        tables.append(transfer_table(results, f"Table 2: domain generalization (source ImageNet, {shots} shots)",
                                     "table2_domain_generalization", DG_TARGETS, None, paper.DOMAIN_GENERALIZATION,
                                     other_targets=False))
    if "ablation" in which:
        tables += ablation_tables(results)
    if "figure2" in which:
        tables += prompt_token_tables(results)
    return [t for t in tables if t is not None]


def render_markdown_file(table: Table, image: Optional[str] = None) -> str:
    """A table's ``.md`` file: a heading, the table, its notes as a list and, if given, its picture."""
    body = tabulate([[cell_text(c) for c in row] for row in table.rows], headers=table.headers, tablefmt="github",
                    disable_numparse=True, stralign="right")
    parts = [f"### {table.title}", body, "\n".join(f"- {note}" for note in table.notes)]
    if image:
        parts.append(f"![{table.title}]({image})")
    return "\n\n".join(p for p in parts if p) + "\n"


def write_tables(tables: Sequence[Table], out_dir: str) -> List[str]:
    """``<slug>.md``, ``<slug>.csv`` and ``<slug>.png`` of every table in ``out_dir``; the paths written."""
    from .plots import draw_chart  # matplotlib only when pictures are asked for

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for table in tables:
        stem = os.path.join(out_dir, table.slug)
        image = None
        if table.chart is not None:
            draw_chart(table.chart, table.title, stem + ".png")
            image = os.path.basename(stem) + ".png"
            written.append(stem + ".png")
        for path, text in ((stem + ".md", render_markdown_file(table, image)),
                           (stem + ".csv", render_csv(table) + "\n")):
            with atomic_write(path) as f:
                f.write(text)
            written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", nargs="?", default="output", help="output root of the scripts (default: output)")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES), help="tables to print")
    parser.add_argument("--shots", type=int, default=16, help="shots of the runs to read (default: 16)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="seeds every method should have (default: the seeds found for the method)")
    parser.add_argument("--format", default="github",
                        help="markdown (= github), csv, or any tabulate format such as simple (default: github)")
    parser.add_argument("--out-dir", help="also write every table as <slug>.md, <slug>.csv and <slug>.png here")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.format not in ("csv", "markdown", *tabulate_formats):
        print(f"error: unknown format {args.format}; use markdown, csv or one of: {', '.join(tabulate_formats)}",
              file=sys.stderr)
        return 2
    if not os.path.isdir(args.output):
        print(f"error: {args.output} is not a folder (pass the output root of the scripts)", file=sys.stderr)
        return 1
    runs, warnings = collect_runs(args.output, shots=args.shots)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    tables = build_tables(Results(runs, args.seeds), args.tables, shots=args.shots)
    if not tables:
        print(f"No results for these tables under {args.output} (looked for results.json of {args.shots}-shot "
              "runs in the scripts' folder layout).", file=sys.stderr)
        return 1
    print("\n\n".join(render(t, args.format) for t in tables))
    if args.out_dir:
        written = write_tables(tables, args.out_dir)
        print(f"Wrote {len(written)} files to {args.out_dir}: "
              f"{', '.join(sorted({os.path.splitext(os.path.basename(p))[0] for p in written}))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
