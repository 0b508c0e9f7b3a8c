"""A training run's --output-dir: a run's folder or a new one (never a folder of anything else),
writable, never clobbered by accident, owned by one run, and replaced by --overwrite only in
what a run writes there.

A run marks its folder when it takes it (RUN_MARKER), so a later run knows the folder is a run's
to resume or replace; a non-empty folder without that mark (or, from before the mark, a run's
own config.json, record or lock) is refused whole. One run owns its folder (runlock.py): a
second run there exits 2 naming the first. --overwrite sets the old run aside once the new
run's setup succeeded, and removes it only after the new run's first checkpoint (overwrite.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import checkpoint as ckpt
from .. import distributed as dist
from . import tracking
from ..finished.artifacts import ARTIFACT_FILES
from ..atomic_files import write_json_atomic
from ..errors import AgreedError, UserError
from ..finished.record import FAILURE_FILENAME, FAILURE_STATUSES, RESULT_FILENAME
from . import overwrite
from .runlock import FolderLock
from ..finished.output_paths import RUN_MARKER, is_run_folder  # noqa: F401  (one definition, torch-free)

# Files and folders a run writes in its --output-dir: what --overwrite sets aside and removes (nothing else).
RUN_ARTIFACTS = (RESULT_FILENAME, FAILURE_FILENAME, "config.json", *ARTIFACT_FILES, tracking.METRICS_FILENAME,
                 "tensorboard", "checkpoints", "attention", "predictions", "logs", "debug")
_PROBE = ".write-test-"  # check_output_writable's file, there for an instant (another rank's)


def check_output_folder(text: str) -> None:
    """--output-dir names a folder a run may write: new, empty or a run's, and writable."""
    if not text.strip():
        raise UserError("--output-dir is empty; give the run's own folder (for example runs/NAME)")
    out = Path(text)
    try:
        held = [] if not out.is_dir() or is_run_folder(out) else \
            sorted(name for name in os.listdir(out) if not name.startswith(_PROBE))
    except OSError as err:
        raise UserError(f"cannot read output folder {out} ({err.strerror}); choose another --output-dir") from None
    if held:
        shown = ", ".join(held[:6]) + (f" and {len(held) - 6} more" if len(held) > 6 else "")
        raise UserError(f"{out} is not a training run folder (it holds {shown}) and a run writes only into "
                        "its own; choose a new or empty --output-dir")
    check_output_writable(out)


def check_output_writable(out: Path) -> None:
    probe = out / f"{_PROBE}{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        try:
            with open(probe, "wb") as handle:  # a byte, not an empty file: a full disk still makes those
                handle.write(b"x")
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as err:
        raise UserError(f"output folder {out} is not writable ({err.strerror}); free space there or choose "
                        "another --output-dir") from None


def check_output_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a finished run or silently restart one in progress (under the folder's lock)."""
    if (out / RESULT_FILENAME).exists() and not overwrite:
        raise UserError(f"{out} already holds a finished run ({RESULT_FILENAME}); pass --overwrite to replace it "
                        "or choose another --output-dir")
    if ckpt.has_checkpoints(out) and not (resume or overwrite):
        raise UserError(f"{out} holds checkpoints of an unfinished run; pass --resume to continue it "
                        "or --overwrite to start again")


def hold_output_lock(out: Path, info) -> FolderLock | None:
    """Rank 0 locks the run folder, marks it as a run's and finishes an --overwrite that was cut
    short there; every rank learns the verdict, so all exit together."""
    lock, error = None, None
    if info.is_main:
        try:
            lock = FolderLock(out, "training run").acquire()
            if not (out / RUN_MARKER).exists():
                write_json_atomic(out / RUN_MARKER, {"what": "attempt-dist training run", "created": time.time()})
            overwrite.finish_cut_moves(out, RUN_ARTIFACTS)
        except UserError as err:
            error = str(err)
        except OSError as err:  # a full disk, a read-only file system: the lock or the mark not written
            error = f"cannot write in {out} ({err.strerror}); free space there or choose another --output-dir"
    error = dist.broadcast_object(error)
    if error:
        if lock is not None:
            lock.release()
        raise AgreedError(error)
    return lock


def set_old_run_aside(out: Path) -> None:
    """--overwrite, once the new run's setup succeeded: the old run's files out of the way."""
    overwrite.set_old_run_aside(out, RUN_ARTIFACTS)


def drop_old_run(out: Path, info) -> None:
    """The new run has its first complete checkpoint (or finished): the old run goes (rank 0)."""
    if info.is_main:
        overwrite.drop_old_run(out)


def restore_old_run(out: Path, info) -> bool:
    """The new run ended before that: the old run comes back (rank 0; True when there was one)."""
    return bool(info and info.is_main) and overwrite.restore_old_run(out, RUN_ARTIFACTS)
