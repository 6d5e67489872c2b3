"""Shared test fixtures: the repository on sys.path, a small generated DemoShapes tree, functions that run
``train.py`` in a subprocess exactly as a user would (no CLIP weights available), one after another or
overlapping (``start_train``/``finish_train``), the same command line in this process (``cli``), a
capture of the engine's log messages (``engine_log``), and the checks of a refused run (``one_error_line``,
``folder_digest``)."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it, before torch loads OpenMP

import datasets  # noqa: E402,F401  (registers the readers)
import trainers  # noqa: E402,F401  (registers the trainers)
from promptlearn.tools.make_demo_data import make_demo_dataset  # noqa: E402

TINY_SPLIT_SIZES = {"train": 8, "val": 2, "test": 4}


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A data root holding a small DemoShapes (10 classes; 8 train, 2 val, 4 test images per class)."""
    root = tmp_path_factory.mktemp("data")
    make_demo_dataset(str(root), seed=0, split_sizes=TINY_SPLIT_SIZES, size=40)
    return str(root)


@pytest.fixture(scope="session")
def empty_weights_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("clip_weights"))


def _train_env(env_extra=None):
    env = dict(os.environ)
    env.setdefault("CLIP_WEIGHTS_DIR", os.path.join(REPO_ROOT, ".no_clip_weights_in_tests"))
    env["PYTHONUNBUFFERED"] = "1"
    if env_extra:
        env.update(env_extra)
    return env


def run_train(args, env_extra=None, check=True, timeout=600):
    """Run ``python train.py ARGS`` from the repository root; returns the CompletedProcess."""
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "train.py"), *map(str, args)], cwd=REPO_ROOT,
                          env=_train_env(env_extra), capture_output=True, text=True, timeout=timeout)
    return _checked(proc, check)


def start_train(args, env_extra=None):
    """Start ``python train.py ARGS`` in the background, so that several runs overlap their start-up
    imports; ``finish_train`` waits for it and returns a CompletedProcess. Output goes to temporary
    files, not pipes, so a run never blocks on a full pipe while another one is awaited."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in finish_train)
    popen = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "train.py"), *map(str, args)], cwd=REPO_ROOT,
                             env=_train_env(env_extra), stdout=out, stderr=err, text=True)
    popen.train_args, popen.train_files = [str(a) for a in args], (out, err)
    return popen


def finish_train(popen, check=True, timeout=600):
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()
        raise
    texts = []
    for f in popen.train_files:
        f.seek(0)
        texts.append(f.read())
        f.close()
    return _checked(subprocess.CompletedProcess(popen.train_args, popen.returncode, *texts), check)


def _checked(proc, check):
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\nSTDOUT:\n{proc.stdout[-4000:]}\n"
                             f"STDERR:\n{proc.stderr[-4000:]}")
    return proc


def one_error_line(code, out, err):
    """The single ``error: ...`` line a refused run prints on stderr (exit code 1, no traceback)."""
    assert code == 1, (code, err[-3000:])
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    return lines[0]


def folder_digest(directory):
    """{relative path: SHA-256} of every file under ``directory``: what must not change when a run is refused."""
    import hashlib

    digest = {}
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return digest


def read_results(output_dir):
    with open(os.path.join(output_dir, "results.json")) as f:
        return json.load(f)


def parse_accuracy(log_text):
    """The last ``* accuracy: X%`` value in a log."""
    values = [float(line.split(":")[1].strip().rstrip("%")) for line in log_text.splitlines()
              if line.startswith("* accuracy:")]
    assert values, "no accuracy line found"
    return values[-1]


class LogCapture:
    """Records of the ``promptlearn`` logger, whatever handlers a run in this process has installed."""

    def __init__(self):
        self.records = []

    @property
    def messages(self):
        return [record.getMessage() for record in self.records]

    @property
    def text(self):
        return "\n".join(self.messages)


@pytest.fixture
def engine_log():
    """Capture every message logged under ``promptlearn`` (INFO and above) during a test."""
    import logging

    capture = LogCapture()

    class _Handler(logging.Handler):
        def emit(self, record):
            capture.records.append(record)

    logger = logging.getLogger("promptlearn")
    handler = _Handler(level=logging.INFO)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield capture
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def cli(capsys, monkeypatch, empty_weights_dir):
    """Run ``train.py``'s command line in this process (``train.cli``, which ``python train.py`` calls);
    returns (exit code, stdout, stderr). Faster than a subprocess: the imports are already done."""
    import train
    from promptlearn.utils.logger import close_logger

    monkeypatch.setenv("CLIP_WEIGHTS_DIR", empty_weights_dir)

    def run(argv):
        try:
            code = train.cli([str(a) for a in argv])
        finally:
            close_logger()
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
