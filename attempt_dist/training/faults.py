"""Fault injection and state dumps for the multi-rank tests, driven by environment variables and
read once per run, so the training loop itself holds no test code.

    ATTEMPT_DIST_CRASH_AFTER_STEP=4        exit abruptly right after step 4's checkpoint (a "kill")
    ATTEMPT_DIST_PAUSE_AFTER_STEP=2        after step 2's checkpoint, touch RUN/paused-rank<r> and
                                           wait (10 min at most), so a test can preempt, cancel or
                                           signal a job that is surely mid-run
    ATTEMPT_DIST_STOP_RANK_AFTER_STEP=1:2  rank 1 stops itself (SIGSTOP) after step 2, like a hung node
    ATTEMPT_DIST_DUMP_STATE=1              every rank writes its whole (gathered) model state at the
                                           start and the end, to compare ranks and frozen weights
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .checkpoint import dump_full_state

CRASH_ENV = "ATTEMPT_DIST_CRASH_AFTER_STEP"
DUMP_ENV = "ATTEMPT_DIST_DUMP_STATE"
PAUSE_ENV = "ATTEMPT_DIST_PAUSE_AFTER_STEP"
STOP_ENV = "ATTEMPT_DIST_STOP_RANK_AFTER_STEP"


class FaultHooks:
    """The hooks the training loop calls; each does nothing unless its variable is set."""

    def __init__(self, out: Path, rank: int) -> None:
        self.crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
        self.pause_after = int(os.environ.get(PAUSE_ENV, "0") or 0)
        self.dump = os.environ.get(DUMP_ENV) == "1"
        stop_rank, _, stop_step = os.environ.get(STOP_ENV, "").partition(":")
        self.stop_after = int(stop_step) if stop_rank and int(stop_rank) == rank else 0
        self.out, self.rank = out, rank

    def after_step(self, step: int) -> None:
        if self.stop_after and step == self.stop_after:
            os.kill(os.getpid(), signal.SIGSTOP)  # alive but silent: the others must not wait forever

    def after_checkpoint(self, step: int) -> None:
        if self.crash_after and step == self.crash_after:
            os._exit(9)  # an abrupt kill right after this step's checkpoint
        if self.pause_after and step == self.pause_after:
            (self.out / f"paused-rank{self.rank}").touch()
            time.sleep(600)

    def dump_state(self, module, when: str) -> None:
        if self.dump:
            dump_full_state(module, self.out / "debug" / f"rank{self.rank}_{when}.pt")
