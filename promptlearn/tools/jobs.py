"""Small questions the shell sweeps (``scripts/common.sh``) ask about a job, answered without importing torch.

    python -m promptlearn.tools.jobs split-opts 'KEY VALUE KEY "two words"'   # one argument per line
    python -m promptlearn.tools.jobs max-epoch CONFIG.yaml [KEY VALUE ...]      # the epoch a run ends at
    python -m promptlearn.tools.jobs has-results DIR [EPOCH]                    # exit 0 when DIR is done
    python -m promptlearn.tools.jobs same-job DIR TRAIN.PY-ARGUMENTS...         # exit 0 when DIR holds that job
"""
import argparse
import json
import os
import shlex
import sys
from typing import List, Optional

import yaml

from promptlearn.run_record import same_job


def split_opts(text: str) -> List[str]:
    """Split ``KEY VALUE ...`` as a shell would (quotes keep a value with spaces in one piece)."""
    return shlex.split(text)


def max_epoch(config_file: str, opts: Optional[List[str]] = None) -> int:
    """``OPTIM.MAX_EPOCH`` of a run: the last one given in ``opts``, else the config file's, else the default."""
    opts = list(opts or [])
    for key, value in reversed(list(zip(opts[::2], opts[1::2]))):
        if key == "OPTIM.MAX_EPOCH":
            return int(value)
    with open(config_file) as f:
        cfg = yaml.safe_load(f) or {}
    value = (cfg.get("OPTIM") or {}).get("MAX_EPOCH")
    if value is None:
        from promptlearn.config import get_cfg_default

        value = get_cfg_default().OPTIM.MAX_EPOCH
    return int(value)


def has_results(directory: str, epoch: Optional[int] = None) -> bool:
    """True when ``directory/results.json`` holds a test result (of the weights of ``epoch``, if given).

    A training run writes its test result after the last epoch and an evaluation writes the epoch of the
    checkpoint it loaded, so an interrupted run, or one made with other epochs, does not count as done.
    """
    path = os.path.join(directory, "results.json")
    if not os.path.isfile(path):
        return False
    try:
        with open(path) as f:
            test = json.load(f).get("test")
    except (OSError, ValueError):
        return False
    if not isinstance(test, dict) or "accuracy" not in test:
        return False
    return epoch is None or test.get("epoch") == epoch


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Questions the shell sweeps ask about a job.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split-opts", help="print the words of a KEY VALUE string, one per line")
    p.add_argument("text")
    p = sub.add_parser("max-epoch", help="print OPTIM.MAX_EPOCH of a config file after KEY VALUE overrides")
    p.add_argument("config_file")
    p.add_argument("opts", nargs=argparse.REMAINDER)
    p = sub.add_parser("has-results", help="exit 0 when DIR/results.json has a test result (at EPOCH)")
    p.add_argument("directory")
    p.add_argument("epoch", nargs="?", type=int)
    p = sub.add_parser("same-job", help="exit 0 when DIR's run.json records a start with these train.py arguments, "
                                        "its config files are unchanged and (an evaluation) so are the weights")
    p.add_argument("directory")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "split-opts":
        words = split_opts(args.text)
        if any("\n" in word for word in words):
            print("error: a config value may not contain a line break", file=sys.stderr)
            return 2
        if words:
            print("\n".join(words))
        return 0
    if args.command == "max-epoch":
        print(max_epoch(args.config_file, args.opts))
        return 0
    if args.command == "same-job":
        return 0 if same_job(args.directory, args.argv) else 1
    return 0 if has_results(args.directory, args.epoch) else 1


if __name__ == "__main__":
    sys.exit(main())
