"""One owner per folder: an exclusive lock on a run folder (train) or a sweep run folder.

    with FolderLock(out, "training run"):
        ...  # a second process on `out` gets a UserError naming this one (pid, host, start)

The lock is `fcntl.flock` on `<folder>/.lock`, so the kernel releases it when the owner dies
(kill -9, lost node on a local file system): a lock file left behind by a dead owner is stale,
taken over with a message, never waited on. The file records the owner (pid, host, start
time, command) for the message the second process prints. The owner removes the file when it
releases the lock; a process that locked a file just removed by its owner sees that its
file is no longer the one at the path and tries again, so two processes never both hold it.
On NFS, flock is honoured across hosts on Linux (it is mapped to a POSIX lock there).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import UserError

LOCK_FILENAME = ".lock"


def read_owner(folder: str | os.PathLike) -> dict | None:
    """The owner recorded in the folder's lock file (None when there is none, it is unreadable, or
    it is not an owner record: other locks of the same name may hold just a pid)."""
    try:
        owner = json.loads((Path(folder) / LOCK_FILENAME).read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def describe(owner: dict | None) -> str:
    if not owner:
        return "another process (owner not recorded yet)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
    return f"pid {owner.get('pid')} on host {owner.get('host')} (started {started})"


class FolderLock:
    """Exclusive ownership of a folder for the life of a run; a context manager."""

    def __init__(self, folder: str | os.PathLike, what: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILENAME
        self.what = what
        self._fd: int | None = None
        self.took_over: dict | None = None  # the stale owner this lock replaced, if any

    def acquire(self) -> "FolderLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create {self.folder} ({err.strerror}); choose another folder") from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise UserError(f"cannot create the lock file {self.path} ({err.strerror}); "
                                "choose a folder you can write") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"{self.folder} is in use by another {self.what}: {describe(read_owner(self.folder))}; "
                                "wait for it to finish, stop it, or choose another folder") from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the previous owner removed the file between our open and flock
        previous = os.read(fd, 1 << 16)
        if previous.strip():
            # The kernel dropped the previous owner's flock, so it died without releasing.
            try:
                self.took_over = json.loads(previous)
            except ValueError:
                self.took_over = {}
            print(f"note: {self.folder} was locked by {describe(self.took_over)}, which is no longer "
                  "running; taking over", file=sys.stderr, flush=True)
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                 "what": self.what, "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file while still holding the lock: a waiter that opened it sees the inode
        # change after it gets the lock and retries on a fresh file.
        self.path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
