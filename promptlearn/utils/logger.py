"""Log to the console and to ``OUTPUT_DIR/log.txt``.

Messages go through :mod:`logging` (logger ``promptlearn``) with the bare message as format, so the
result lines in the file are exactly the text that result parsers read. ``print`` output (from trainers
ported from Dassl, which print) is tee'd into the same file. An existing log is never overwritten: a new
run into the same folder writes ``log.txt-<timestamp>``, as Dassl does.
"""
import logging
import os
import sys
import time

LOGGER_NAME = "promptlearn"


class _Tee:
    """A stdout replacement writing to the console and to the log file."""

    def __init__(self, console, file):
        self.console = console
        self.file = file

    def write(self, msg):
        self.console.write(msg)
        if not self.file.closed:
            self.file.write(msg)

    def flush(self):
        self.console.flush()
        if not self.file.closed:
            self.file.flush()

    def isatty(self):
        return self.console.isatty()

    def fileno(self):
        return self.console.fileno()


_state = {"file": None, "console": None, "loggers": ()}


def log_file_path(output: str) -> str:
    if output.endswith(".txt") or output.endswith(".log"):
        return output
    return os.path.join(output, "log.txt")


def setup_logger(output: str = None, rank: int = 0, extra_loggers=()) -> logging.Logger:
    """Send the records of ``promptlearn`` and of the loggers named in ``extra_loggers`` (the application's, e.g.
    its dataset readers and trainers), and prints, to the console and, on rank 0, to the log file."""
    close_logger()
    logger = logging.getLogger(LOGGER_NAME)
    _state["loggers"] = (LOGGER_NAME, *extra_loggers)
    loggers = [logging.getLogger(name) for name in _state["loggers"]]
    formatter = logging.Formatter("%(message)s")

    console = sys.stdout
    _state["console"] = console
    handler = logging.StreamHandler(console)
    handler.setFormatter(formatter)
    for each in loggers:
        each.setLevel(logging.INFO if rank == 0 else logging.WARNING)
        each.propagate = False
        each.addHandler(handler)
    if rank != 0:
        return logger

    if output:
        fpath = log_file_path(output)
        os.makedirs(os.path.dirname(os.path.abspath(fpath)), exist_ok=True)
        if os.path.exists(fpath):
            fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")
        log_file = open(fpath, "a", buffering=1)  # noqa: SIM115  (kept open for the whole run)
        _state["file"] = log_file
        file_handler = logging.StreamHandler(log_file)
        file_handler.setFormatter(formatter)
        for each in loggers:
            each.addHandler(file_handler)
        sys.stdout = _Tee(console, log_file)
    return logger


def write_to_log_file(msg: str) -> None:
    """Append a line to the current log file only (e.g. an error already shown on stderr)."""
    if _state["file"] is not None and not _state["file"].closed:
        _state["file"].write(msg + "\n")
        _state["file"].flush()


def close_logger() -> None:
    """Detach the handlers and restore stdout (used between runs in one process, e.g. tests)."""
    for name in _state["loggers"]:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    if _state["console"] is not None:
        sys.stdout = _state["console"]
        _state["console"] = None
    if _state["file"] is not None:
        _state["file"].close()
        _state["file"] = None
    _state["loggers"] = ()


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
