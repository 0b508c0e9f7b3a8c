"""A training run's --output-dir: writable, never clobbered by accident, owned by one run, and
cleared for --overwrite only of what a run writes there.

One run owns its folder (runlock.py): a second run there exits 2 naming the first. --overwrite
removes the old run's files only once the new run's setup succeeded (the recipe calls
clear_for_overwrite then).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import checkpoint as ckpt
from .. import distributed as dist
from . import tracking
from ..finished.artifacts import ARTIFACT_FILES
from ..errors import AgreedError, UserError
from ..finished.record import FAILURE_FILENAME, RESULT_FILENAME
from .runlock import FolderLock

# Files and folders a run writes in its --output-dir: what --overwrite removes (and nothing else).
RUN_ARTIFACTS = (RESULT_FILENAME, FAILURE_FILENAME, "config.json", *ARTIFACT_FILES, tracking.METRICS_FILENAME,
                 "tensorboard", "checkpoints", "attention", "predictions", "logs", "debug")


def check_output_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"output folder {out} is not writable ({err.strerror}); choose another --output-dir") from None


def check_output_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a finished run or silently restart one in progress (under the folder's lock)."""
    if (out / RESULT_FILENAME).exists() and not overwrite:
        raise UserError(f"{out} already holds a finished run ({RESULT_FILENAME}); pass --overwrite to replace it "
                        "or choose another --output-dir")
    if ckpt.has_checkpoints(out) and not (resume or overwrite):
        raise UserError(f"{out} holds checkpoints of an unfinished run; pass --resume to continue it "
                        "or --overwrite to start again")


def hold_output_lock(out: Path, info) -> FolderLock | None:
    """Rank 0 locks the run folder; every rank learns the verdict, so all exit together."""
    lock, error = None, None
    if info.is_main:
        try:
            lock = FolderLock(out, "training run").acquire()
        except UserError as err:
            error = str(err)
    error = dist.broadcast_object(error)
    if error:
        raise AgreedError(error)
    return lock


def clear_for_overwrite(out: Path) -> None:
    for name in RUN_ARTIFACTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
