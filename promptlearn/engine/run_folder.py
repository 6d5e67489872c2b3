"""The output folder of a run: what run it holds (its definition, recorded in ``run.json``), which process uses
it (a lock), and whether a new start may use it.

A run's definition is what it computes: every config key but the ones that only say where and how it runs
(``NOT_DEFINING_KEYS``) and the config nodes of the other trainers, plus its kind (training or evaluation),
the code version (``promptlearn.__version__``), for training the number of ranks (N ranks take steps of N
batches) and for an evaluation the SHA-256 of the weights it loads.

A folder *holds a run* once it has results (``results.json``) or checkpoints. A start into such a folder:

- with the same definition, goes on: training resumes exactly (a finished one is evaluated again); an
  evaluation is done again;
- with another definition, or into a folder without ``run.json``, stops with one line naming the keys that
  differ and the two ways out: another ``--output-dir``, or ``--start-over``, which moves the folder's files
  to ``replaced/<time>/`` inside it (nothing is deleted) and starts afresh.

A folder without results or checkpoints (a run that stopped before its first checkpoint) is used as it is.
Everything here runs on rank 0, which holds the lock for the whole run; the other ranks learn the outcome.
"""
import contextlib
import json
import os
import socket
import time
from typing import Optional

from .. import __version__
from ..config import NOT_DEFINING_KEYS, flatten, get_cfg_default
from ..errors import UserError
from ..run_record import EVALUATION, RUN_FILE, TRAINING, evaluated_weights, job_inputs, read_record
from ..utils.distributed import broadcast_from_main, get_world_size, is_main_process
from ..utils.locking import LOCK_NAME, FolderLock, describe_holder
from ..utils.tools import atomic_write, git_commit, remove_temporary_files
from ..utils.torchtools import RESUME_POINTER, resume_file
from .build import TRAINER_REGISTRY, extend_cfg_for_trainers

#: where --start-over moves the files of the run a folder held
REPLACED_DIR = "replaced"
#: sub-folders that never hold checkpoints
_NOT_MODEL_DIRS = (REPLACED_DIR, "tensorboard")
_SHOWN_DIFFERENCES = 6


def _plain(value):
    """``value`` as run.json stores it (tuples become lists), so that recorded and current values compare."""
    return json.loads(json.dumps(value))


def _trainer_node(name: str) -> Optional[str]:
    """The trainer's own config node (``TRAINER.<NODE>``): None when unknown (then every node counts)."""
    if name not in TRAINER_REGISTRY:
        return None
    return getattr(TRAINER_REGISTRY.get(name), "CFG_NODE", None)


def _defining(key: str, own_node: Optional[str]) -> bool:
    if key in NOT_DEFINING_KEYS:
        return False
    parts = key.split(".")
    if parts[0] == "TRAINER" and len(parts) > 2:  # TRAINER.<NODE>.<KEY>: only the trainer's own node
        return own_node is None or parts[1] == own_node
    return True


def run_definition(cfg, kind: str, weights: Optional[dict] = None) -> dict:
    """The definition of a run of ``cfg`` (see the module's docstring), as run.json records it."""
    own = _trainer_node(cfg.TRAINER.NAME)
    definition = {key: _plain(value) for key, value in flatten(cfg).items() if _defining(key, own)}
    definition.update(kind=kind, code_version=__version__)
    if kind == TRAINING:
        definition["world_size"] = get_world_size()
    else:
        definition["weights"] = dict(weights or {})
    return definition


def _default_values() -> dict:
    cfg = get_cfg_default()
    extend_cfg_for_trainers(cfg)
    return {key: _plain(value) for key, value in flatten(cfg).items()}


_MISSING = object()


def differences(recorded: dict, current: dict) -> list:
    """``[(key, recorded value, current value)]`` of the keys whose values differ. A key the record lacks
    counts only when its current value is not its default (a key added since keeps the behaviour it had); a
    key the current code no longer has does not count."""
    defaults = _default_values()
    found = []
    for key in sorted(set(recorded) | set(current)):
        if key not in current:
            continue
        old = recorded.get(key, _MISSING)
        if old is _MISSING and key in defaults and defaults[key] == current[key]:
            continue
        if old != current[key]:
            found.append((key, old, current[key]))
    return found


def _describe(key: str, old, new) -> str:
    if key == "weights":
        return "the weights evaluated: other files or contents (another model, or another epoch)"
    shown_old = "not recorded" if old is _MISSING else json.dumps(old)
    return f"{key}: {shown_old} in the folder, {json.dumps(new)} now"


def _a_run(kind) -> str:
    return {TRAINING: "a training run", EVALUATION: "an evaluation"}.get(kind, "a run of an unknown kind")


def _ways_out(folder: str) -> str:
    return (f"To keep it, give this run another --output-dir (the scripts: set TAG); to start over in this folder, "
            f"add --start-over (the scripts: RESTART=1), which moves its files to {os.path.join(folder, REPLACED_DIR)}"
            "/<time>/ and deletes nothing")


class RunFolder:
    """The output folder ``path`` of a run."""

    def __init__(self, path: str):
        self.path = path

    def create(self) -> None:
        try:
            os.makedirs(self.path, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"the output folder {self.path} cannot be made: it, or a folder above it, is a file. "
                            "Give another --output-dir") from None
        except OSError as err:
            raise UserError(f"the output folder {self.path} cannot be made ({err.strerror}): give another "
                            "--output-dir, or fix the permissions") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise UserError(f"the output folder {self.path} is not writable: give another --output-dir, or fix its "
                            "permissions")

    def lock(self) -> FolderLock:
        try:
            return FolderLock(self.path).acquire()
        except PermissionError as err:
            raise UserError(f"cannot write in the output folder {self.path} ({err.strerror}): give another "
                            "--output-dir, or fix its permissions") from None

    def model_folders(self) -> list:
        """The sub-folders holding checkpoints (one per registered model)."""
        found = []
        for sub in sorted(os.listdir(self.path)) if os.path.isdir(self.path) else []:
            folder = os.path.join(self.path, sub)
            if sub in _NOT_MODEL_DIRS or not os.path.isdir(folder):
                continue
            names = os.listdir(folder)
            if any(name == RESUME_POINTER or (name.startswith("model") and ".pth" in name) for name in names):
                found.append(folder)
        return found

    def holds_run(self) -> bool:
        """Whether the folder has results or checkpoints (what a start with another definition must not touch)."""
        return os.path.isfile(os.path.join(self.path, "results.json")) or bool(self.model_folders())

    def check(self, definition: dict, what: str = "this folder") -> None:
        """Refuse (UserError) a start of ``definition`` into a folder that holds another run."""
        if not self.holds_run():
            return
        record = read_record(self.path)
        if record is None:
            raise UserError(f"{self.path} holds results or checkpoints but no readable {RUN_FILE} saying which run "
                            "made them (an older version of promptlearn, or another tool), so they cannot be checked "
                            f"against this run. {_ways_out(self.path)}")
        recorded = record["definition"]
        if recorded.get("kind") != definition["kind"]:
            raise UserError(f"{self.path} holds {_a_run(recorded.get('kind'))} and this is "
                            f"{_a_run(definition['kind'])}: an evaluation writes its results.json into a folder of "
                            f"its own. {_ways_out(self.path)}")
        found = differences(recorded, definition)
        if found:
            shown = "; ".join(_describe(*item) for item in found[:_SHOWN_DIFFERENCES])
            more = f"; and {len(found) - _SHOWN_DIFFERENCES} more" if len(found) > _SHOWN_DIFFERENCES else ""
            raise UserError(f"{self.path} holds {_a_run(recorded['kind'])} with other settings ({shown}{more}). "
                            f"{_ways_out(self.path)}")
        for folder in self.model_folders():  # the same run: it must be resumable from where it stopped
            resume_file(folder)

    def start_over(self) -> Optional[str]:
        """Move every file of the folder (but the lock and earlier replaced runs) to ``replaced/<time>/``;
        where they went, or None when there was nothing to move."""
        entries = sorted(e for e in os.listdir(self.path) if e not in (LOCK_NAME, REPLACED_DIR))
        if not entries:
            return None
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S")
        target, n = os.path.join(self.path, REPLACED_DIR, stamp), 1
        while os.path.exists(target):
            n += 1
            target = os.path.join(self.path, REPLACED_DIR, f"{stamp}-{n}")
        os.makedirs(target)
        for entry in entries:
            os.rename(os.path.join(self.path, entry), os.path.join(target, entry))
        return target

    def record(self, definition: dict, argv) -> None:
        """Write run.json: the definition, this start's command line, and the starts so far of the same run."""
        previous = read_record(self.path)
        starts = previous.get("starts", []) if previous and previous["definition"] == definition else []
        inputs = job_inputs(argv)
        starts.append({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "host": socket.gethostname(),
                       "commit": git_commit(os.path.dirname(os.path.abspath(__file__))), "argv": inputs["argv"]})
        with atomic_write(os.path.join(self.path, RUN_FILE)) as f:
            json.dump({"definition": definition, "inputs": inputs, "starts": starts}, f, indent=2)


def _check_resume_source(cfg, definition: dict) -> None:
    """``RESUME`` (--resume DIR), when it is another folder: it must hold the same run."""
    source = cfg.RESUME
    if not source or os.path.abspath(source) == os.path.abspath(cfg.OUTPUT_DIR):
        return
    folder = RunFolder(source)
    if not folder.holds_run():
        return
    record = read_record(source)
    found = differences(record["definition"], definition) if record else None
    if found is None or found:
        detail = "it has no run.json" if found is None else "; ".join(_describe(*item) for item in found[:6])
        raise UserError(f"--resume {source} holds another run than this one ({detail}): resume from a folder of the "
                        "same run, or drop --resume to train from the start")


def _prepare(folder: RunFolder, lock: FolderLock, cfg, kind, argv, start_over, model_dir, load_epoch) -> list:
    """Rank 0, holding the lock: check (or start over), clean up, record; the lines to log once logging runs."""
    notes = []
    if lock.stale:
        notes.append(f"The lock of {folder.path} was left by {describe_holder(lock.stale)}, which no longer runs: "
                     "taken over")
    definition = None
    if kind is not None:
        weights = evaluated_weights(model_dir, load_epoch) if kind == EVALUATION else None
        definition = run_definition(cfg, kind, weights)
        if kind == TRAINING:
            _check_resume_source(cfg, definition)
        if start_over:
            moved = folder.start_over()
            if moved:
                notes.append(f"--start-over: the files that were in {folder.path} are now in {moved}")
        else:
            folder.check(definition)
    removed = remove_temporary_files(folder.path, depth=1)
    if removed:
        notes.append(f"Removed {len(removed)} temporary file(s) of writes that a stopped run left unfinished: "
                     f"{', '.join(os.path.relpath(p, folder.path) for p in removed)}")
    if definition is not None:
        folder.record(definition, argv)
    return notes


@contextlib.contextmanager
def output_folder(cfg, kind: Optional[str], argv=(), start_over: bool = False, model_dir: str = "",
                  load_epoch: Optional[int] = None):
    """Take ``cfg.OUTPUT_DIR`` for a run of ``kind`` (TRAINING, EVALUATION, or None for a run that writes no
    results): made if missing, locked until the block ends, checked against the run it holds (see the module's
    docstring), cleared of temporary files and recorded. Yields the lines to log (logging starts in the block).
    A refusal raises the same UserError on every rank, before anything in the folder has changed."""
    lock, notes, error, failure = None, [], None, None
    if is_main_process() and cfg.OUTPUT_DIR:
        folder = RunFolder(cfg.OUTPUT_DIR)
        try:
            folder.create()
            lock = folder.lock()
            notes = _prepare(folder, lock, cfg, kind, argv, start_over, model_dir, load_epoch)
        except UserError as err:
            if lock is not None:
                lock.release()
            error, failure = str(err), err
    error = broadcast_from_main(error)
    if error is not None:
        raise failure or UserError(error)
    try:
        yield notes
    finally:
        if lock is not None:
            lock.release()
