"""What an output folder records about the run that made it, ``<folder>/run.json``, readable without torch (the
shell sweeps ask about it through ``promptlearn.tools.jobs``).

    {"definition": {...},   # what the run computes: every config key that defines it (see engine/run_folder.py),
                            # its kind (training / evaluation), the code version, and for an evaluation the
                            # SHA-256 of the weights it loaded
     "inputs": {"argv": [...], "files": {config file: SHA-256}},   # the command line of the latest start
     "starts": [{"time", "host", "commit", "argv"}, ...]}           # every start into the folder, oldest first
"""
import json
import os
from typing import Dict, List, Optional, Sequence

from .checksums import file_sha256

RUN_FILE = "run.json"
TRAINING, EVALUATION = "training", "evaluation"
#: train.py's flags naming the YAML files a run merges, and the flag that is an action rather than a setting
CONFIG_FLAGS = ("--config-file", "--dataset-config-file")
START_OVER_FLAG = "--start-over"
BEST_FILE = "model-best.pth.tar"


def read_record(directory: str) -> Optional[dict]:
    """The folder's run.json, or None when it has none (or an unreadable one)."""
    try:
        with open(os.path.join(directory, RUN_FILE)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("definition"), dict) else None


def flag_value(argv: Sequence[str], flag: str) -> Optional[str]:
    """The value given to ``flag`` in ``argv`` (``--flag VALUE`` or ``--flag=VALUE``; the last one wins)."""
    value = None
    for i, word in enumerate(argv):
        if word == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(flag + "="):
            value = word[len(flag) + 1:]
    return value


def job_inputs(argv: Sequence[str]) -> dict:
    """The command line of a start (without ``--start-over``) and the SHA-256 of the config files it names."""
    argv = [str(word) for word in argv if word != START_OVER_FLAG]
    files = {}
    for flag in CONFIG_FLAGS:
        path = flag_value(argv, flag)
        if path and os.path.isfile(path):
            files[path] = file_sha256(path)
    return {"argv": argv, "files": files}


def evaluated_weights(model_dir: str, epoch: Optional[int]) -> Dict[str, str]:
    """``{"<model>/<file>": SHA-256}`` of the files an evaluation of ``model_dir`` at ``epoch`` (None:
    model-best.pth.tar) loads, one per model folder holding one."""
    name = BEST_FILE if epoch is None else f"model.pth.tar-{epoch}"
    weights = {}
    if model_dir and os.path.isdir(model_dir):
        for sub in sorted(os.listdir(model_dir)):
            path = os.path.join(model_dir, sub, name)
            if os.path.isfile(path):
                weights[f"{sub}/{name}"] = file_sha256(path)
    return weights


def _without_root(argv: List[str]) -> List[str]:
    # where the data lives is not part of what a job computes
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--root":
            skip = True
        elif not word.startswith("--root="):
            out.append(word)
    return out


def same_job(directory: str, argv: Sequence[str]) -> bool:
    """Whether the run recorded in ``directory`` was started with the command line ``argv`` (the data root
    aside), the config files it names are unchanged, and (an evaluation) the weights it evaluated are still the
    ones in its model folder. What the shell sweeps check before skipping a job whose results exist."""
    record = read_record(directory)
    if record is None:
        return False
    recorded, now = record.get("inputs") or {}, job_inputs(argv)
    if _without_root(recorded.get("argv") or []) != _without_root(now["argv"]) or recorded.get("files") != now["files"]:
        return False
    definition = record["definition"]
    if definition.get("kind") == EVALUATION and definition.get("weights"):
        epoch = flag_value(now["argv"], "--load-epoch")
        if epoch is not None and not epoch.isdigit():
            return False
        current = evaluated_weights(flag_value(now["argv"], "--model-dir") or "", int(epoch) if epoch else None)
        return current == definition["weights"]
    return True
