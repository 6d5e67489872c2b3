"""Mini-B2N's own check of what the benchmark is for, from the runs under an output root:

- zero-shot CLIP (mini-ViT) is at least 3x chance and at most 90% on every dataset's base and new split
  (it has learned something general, and prompt learning has room to learn);
- CoOp's base accuracy, mean of the seeds, is at least 5 points above zero-shot on every dataset;

and the average over the datasets of every method's base, new and HM (mean ± std over the seeds' averages).

    python -m promptlearn.demo.report OUTPUT [--datasets mini_shapes ...] [--out FILE.md]
"""
import argparse
import json
import sys
from typing import Dict, List, Optional

from tabulate import tabulate

from ..tools.tables import Results, collect_runs, dataset_name, harmonic_mean
from .mini_b2n import MINI_B2N

ZS_MIN_TIMES_CHANCE = 3.0
ZS_MAX = 90.0
COOP_MIN_GAIN = 5.0


def _classes(path: str) -> Optional[int]:
    with open(path) as f:
        return (json.load(f).get("run") or {}).get("num_classes")


def _fmt(estimate) -> str:
    if estimate is None:
        return "-"
    return f"{estimate.mean:.2f}" + (f" ± {estimate.std:.2f}" if estimate.std is not None else "")


def report(root: str, datasets: List[str], shots: int = 16) -> str:
    runs, _ = collect_runs(root, shots)
    results = Results(runs)
    classes: Dict[tuple, int] = {}
    for run in runs:
        if run.trainer == "ZeroshotCLIP":
            classes[(run.dataset, run.kind)] = _classes(run.path)
    zs = [m for m in results.methods(("base", "new")) if m.trainer == "ZeroshotCLIP"]
    coop = [m for m in results.methods(("base", "new")) if m.trainer == "CoOp"]
    lines, rows, failed = [], [], 0
    for d in datasets:
        zs_acc = {k: results.estimate(zs[0], k, d) if zs else None for k in ("base", "new")}
        for kind in ("base", "new"):
            acc, n = zs_acc[kind], classes.get((d, kind))
            if acc is None or not n:
                rows.append([dataset_name(d), f"zero-shot {kind}", "-", "missing run", "?"])
                failed += 1
                continue
            floor = ZS_MIN_TIMES_CHANCE * 100.0 / n
            ok = floor <= acc.mean <= ZS_MAX
            failed += not ok
            rows.append([dataset_name(d), f"zero-shot {kind} in [{floor:.1f}, {ZS_MAX:.0f}] (3x chance, {n} classes)",
                         f"{acc.mean:.2f}", "", "pass" if ok else "FAIL"])
        coop_base = results.estimate(coop[0], "base", d) if coop else None
        if coop_base is None or zs_acc["base"] is None:
            rows.append([dataset_name(d), "CoOp base >= zero-shot + 5", "-", "missing runs", "?"])
            failed += 1
            continue
        gain = coop_base.mean - zs_acc["base"].mean
        ok = gain >= COOP_MIN_GAIN
        failed += not ok
        rows.append([dataset_name(d), f"CoOp base >= zero-shot + {COOP_MIN_GAIN:.0f} (mean of {coop_base.n} seeds)",
                     f"{coop_base.mean:.2f}", f"{gain:+.2f}", "pass" if ok else "FAIL"])
    lines.append("Mini-B2N targets")
    lines.append(tabulate(rows, ["Dataset", "Target", "Accuracy", "Gain", "Check"], tablefmt="github",
                          disable_numparse=True))
    lines.append(f"{'All targets met.' if not failed else f'{failed} target(s) not met.'}")

    average_rows = []
    for method in results.methods(("base", "new")):
        base, new = (results.average(method, kind, datasets) for kind in ("base", "new"))
        hm = harmonic_mean(base.mean, new.mean) if base and new else None
        average_rows.append([method.trainer, _fmt(base), _fmt(new), f"{hm:.2f}" if hm is not None else "-"])
    lines.append("")
    lines.append(f"Average over {', '.join(dataset_name(d) for d in datasets)} (mean ± std over the seeds' averages)")
    lines.append(tabulate(average_rows, ["Method", "Base", "New", "HM"], tablefmt="github", disable_numparse=True))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output")
    parser.add_argument("--datasets", nargs="+", default=list(MINI_B2N))
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--out", default="", help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    text = report(args.output, args.datasets, args.shots)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
