"""Average a result over runs (seeds) from their logs, with the command line of CoOp's ``parse_test_res.py``.

    python parse_test_res.py output/base2new/train_base/caltech101/shots_16/CoOp/vit_b16_ctxv1
    python parse_test_res.py output/base2new/test_new/caltech101/shots_16/CoOp/vit_b16_ctxv1 --test-log
    python parse_test_res.py output/evaluation/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_16shots --test-log --multi-exp

Every sub-folder of DIRECTORY is one run. In a run's log, the lines ``* <keyword>: <value>%`` printed
after the end signal count (``Finish training`` in a training log, so the test of the final model;
``=> result`` with ``--test-log``), and the last one wins. A run that was resumed or evaluated again writes
``log.txt-<timestamp>`` next to ``log.txt``; those logs are read too, in the order they were written, so the
latest result wins (CoOp's script reads ``log.txt`` only). Prints each run's value, then the mean and the
population standard deviation (``--ci95``: the 95% confidence interval, 1.96 std / sqrt(n)), two decimals.
``--multi-exp``: every sub-folder is an experiment holding run folders; also prints the mean over experiments.
For the paper's tables, with harmonic means and averages over datasets, use ``scripts/make_tables.py``.
"""
import argparse
import math
import os
import re
import sys
from typing import List, Optional, Sequence, Tuple

END_SIGNAL_TRAIN = "Finish training"
END_SIGNAL_TEST = "=> result"
LOG_NAME = "log.txt"


class ParseError(Exception):
    """A folder without the result asked for."""


def log_files(run_dir: str) -> List[str]:
    """``log.txt`` and the logs of later runs into the same folder (``log.txt-<timestamp>``), oldest first."""
    names = sorted(name for name in os.listdir(run_dir) if name.startswith(LOG_NAME + "-"))
    if os.path.isfile(os.path.join(run_dir, LOG_NAME)):
        names.insert(0, LOG_NAME)
    return [os.path.join(run_dir, name) for name in names if os.path.isfile(os.path.join(run_dir, name))]


def parse_lines(lines: Sequence[str], end_signal: str, keyword: str) -> Optional[float]:
    """The last ``* <keyword>: X%`` value after ``end_signal``, or None."""
    pattern = re.compile(rf"\* {re.escape(keyword)}: ([\.\deE+-]+)%")
    after_end = False
    value = None
    for line in lines:
        if end_signal in line:
            after_end = True
            continue
        if after_end:
            match = pattern.search(line)
            if match:
                value = float(match.group(1))
    return value


def parse_run(run_dir: str, end_signal: str, keyword: str) -> float:
    """The result of one run folder (the latest of its logs that has one)."""
    files = log_files(run_dir)
    if not files:
        raise ParseError(f"{run_dir}: no {LOG_NAME} in this folder")
    value = None
    for path in files:
        with open(path, errors="replace") as f:
            found = parse_lines(f.read().splitlines(), end_signal, keyword)
        if found is not None:
            value = found
    if value is None:
        names = ", ".join(os.path.basename(p) for p in files)
        hint = ("Did the run finish? For an evaluation log pass --test-log." if end_signal == END_SIGNAL_TRAIN
                else "Did the evaluation finish?")
        raise ParseError(f'{run_dir}: no "* {keyword}: X%" line after "{end_signal}" in {names}. {hint}')
    return value


def sub_folders(directory: str) -> List[str]:
    if not os.path.isdir(directory):
        raise ParseError(f"{directory}: no such folder")
    names = sorted(n for n in os.listdir(directory)
                   if not n.startswith(".") and os.path.isdir(os.path.join(directory, n)))
    if not names:
        raise ParseError(f"{directory}: no run folders in it (pass the folder that holds seed1, seed2, ...)")
    return [os.path.join(directory, n) for n in names]


def mean_and_spread(values: Sequence[float], ci95: bool = False) -> Tuple[float, float]:
    """Mean and population standard deviation (or the 95% confidence half-width 1.96 std / sqrt(n))."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return mean, (1.96 * std / math.sqrt(n) if ci95 else std)


def parse_experiment(directory: str, end_signal: str, keyword: str, ci95: bool = False) -> float:
    """Print every run's value and the summary of ``directory``; returns the mean."""
    runs = sub_folders(directory)
    values, errors = [], []
    for run in runs:
        try:
            values.append(parse_run(run, end_signal, keyword))
        except ParseError as err:
            errors.append(str(err))
    if errors:
        raise ParseError("\n".join(errors))
    print(f"Parsing {len(runs)} runs in {directory}")
    for run, value in zip(runs, values):
        print(f"{os.path.basename(run)}: {keyword} {value:.2f}%")
    mean, spread = mean_and_spread(values, ci95)
    print("===")
    print(f"Summary of {directory}" + (" (95% confidence interval)" if ci95 else ""))
    print(f"* {keyword}: {mean:.2f}% +- {spread:.2f}%")
    print("===")
    return mean


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=str, help="folder whose sub-folders are runs (seed1, seed2, ...)")
    parser.add_argument("--ci95", action="store_true", help="report the 95%% confidence interval, not the std")
    parser.add_argument("--test-log", action="store_true", help='evaluation logs: read after "=> result"')
    parser.add_argument("--multi-exp", action="store_true", help="sub-folders are experiments holding runs")
    parser.add_argument("--keyword", default="accuracy", type=str, help="result line to read (default: accuracy)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    end_signal = END_SIGNAL_TEST if args.test_log else END_SIGNAL_TRAIN
    try:
        if not args.multi_exp:
            parse_experiment(args.directory, end_signal, args.keyword, args.ci95)
            return 0
        means = [parse_experiment(exp, end_signal, args.keyword, args.ci95) for exp in sub_folders(args.directory)]
    except ParseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("Average performance")
    print(f"* {args.keyword}: {sum(means) / len(means):.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
