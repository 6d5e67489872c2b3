"""One process per output folder: an exclusive lock on ``<folder>/.lock``, held for the whole run.

The lock is the operating system's (``flock``), so it is released whenever the process ends, killed or not: a
lock file left by a killed run is taken over by the next one, which reads who held it. The file names the
process holding it (pid, host, start time, command), so that a second run can say which one it waits for.
"""
import contextlib
import json
import os
import socket
import sys
import time

try:
    import fcntl
except ImportError:  # not a POSIX system: runs are not locked
    fcntl = None

from ..errors import UserError

LOCK_NAME = ".lock"


class FolderBusy(UserError):
    """Another process holds the folder's lock."""


def describe_holder(info: dict) -> str:
    if not info:
        return "another process (it has not written its name yet)"
    started = f", started {info['started']}" if info.get("started") else ""
    command = f": {info['command']}" if info.get("command") else ""
    return f"process {info.get('pid', '?')} on {info.get('host', '?')}{started}{command}"


def _read_info(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 1 << 16).decode("utf-8", "replace")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


class FolderLock:
    """``acquire()`` takes the lock of ``directory`` (which must exist) or raises FolderBusy naming the holder;
    ``release()`` gives it back and removes the file. ``stale``: what a killed holder had written, if any."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, LOCK_NAME)
        self.fd = None
        self.stale = {}

    def acquire(self) -> "FolderLock":
        if fcntl is None:
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise FolderBusy(f"another run is using {os.path.dirname(self.path)}: {describe_holder(holder)}. "
                                 "Wait for it to end, or give this run another --output-dir") from None
            # the holder before us may have removed the file between our open and our lock: lock the file that
            # is there now, or the next run would lock another one
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self.fd = fd
        self.stale = _read_info(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        return self

    @staticmethod
    def _holder(fd: int) -> dict:
        # the holder writes its name right after taking the lock: give it a moment
        for _ in range(20):
            info = _read_info(fd)
            if info:
                return info
            time.sleep(0.05)
        return {}

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)  # while still holding it (see acquire)
        os.close(self.fd)
        self.fd = None
