"""How a training run ends, whichever way, and what becomes of the run --overwrite replaces.

    done           the summary and `done: RUN/result.json`; the replaced run, if still set aside, goes
    run failure    failure.json and its exit code (failure.py); before the new run's first
                   checkpoint the replaced run comes back instead, and the error line says so
    Ctrl-C         one line (the step, the checkpoint to resume from) and Interrupted: exit 130
    a full disk    one line (the file, the fault) and exit 2, a UserError
    anything else  raised on: main prints a UserError's line, a bug keeps its traceback

The folder's lock is released last, in every case.
"""

from __future__ import annotations

import errno
import sys

from . import checkpoint as ckpt
from ..errors import Interrupted, UserError
from ..finished.record import RESULT_FILENAME
from .failure import failure_of, record_failure
from .progress import print_summary
from .run_folder import drop_old_run, restore_old_run

# OSErrors that say the disk or file system cannot take the run's files: an I/O fault, not a bug.
DISK_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


class RunEnding:
    """`with RunEnding(recipe) as ending:` around one run; `ending.code` is then its exit code."""

    def __init__(self, recipe) -> None:
        self.recipe = recipe
        self.record = None  # rank 0's RunResult, once finish() wrote result.json
        self.code = 0

    def __enter__(self) -> "RunEnding":
        return self

    def __exit__(self, kind, err, trace) -> bool:
        try:
            return self._end(err)
        finally:
            if self.recipe.lock is not None:
                self.recipe.lock.release()

    def _end(self, err: BaseException | None) -> bool:
        recipe, cfg = self.recipe, self.recipe.cfg
        if err is None:
            drop_old_run(recipe.out, recipe.info)
            if self.record is not None:
                print_summary(self.record, cfg.output_dir)
                print(f"done: {cfg.output_dir}/{RESULT_FILENAME}", flush=True)
            return False
        # Only the folder's owner: a run stopped at the lock must not touch the owner's set-aside run.
        restored = recipe.lock is not None and restore_old_run(recipe.out, recipe.info)
        kept = f"--overwrite replaced nothing: the previous run in {cfg.output_dir} is restored" if restored else ""
        if isinstance(err, KeyboardInterrupt):
            self._interrupted(kept)
        if isinstance(err, OSError) and err.errno in DISK_FAULTS:
            resume = " with --resume" if not restored and ckpt.find_resumable(recipe.out)[0] else ""
            raise UserError(f"writing {err.filename or recipe.out} failed ({err.strerror}); free space on its disk "
                            f"(or fix the file system) and rerun{resume}" + (f"; {kept}" if kept else "")) from None
        if isinstance(err, UserError) and restored:
            raise type(err)(f"{err}; {kept}") from None
        failure = failure_of(err, cfg)
        if failure is None:  # a bug: its traceback follows
            if kept:
                print(f"note: {kept}", file=sys.stderr, flush=True)
            return False
        if restored:  # no failure.json: the folder holds the previous run again, not this one
            print(f"error: {failure.reason}; {kept}", file=sys.stderr, flush=True)
        else:
            record_failure(cfg, failure)
        self.code = failure.exit_code
        return True

    def _interrupted(self, kept: str) -> None:
        recipe = self.recipe
        if recipe.info is None or recipe.info.is_main:
            where = "during setup" if recipe.engine is None else f"at step {recipe.engine.global_steps}"
            found = None if kept else ckpt.find_resumable(recipe.out)[0]
            then = kept or (f"the last complete checkpoint is {found.tag}: continue with --resume" if found
                            else "no checkpoint was saved yet: the same command starts it again")
            print(f"interrupted {where}; {then}", file=sys.stderr, flush=True)
        raise Interrupted() from None
