"""The recipe's fourth step: waiting for the submitted cells, a line as each one ends, and Ctrl-C.

Ctrl-C ends the launch with one line: local jobs (which got the same SIGINT) end and keep
their checkpoints, SLURM jobs run on, and every submitted job is already in its job.json, so
the same command run again resumes what is left.
"""

from __future__ import annotations

import signal
import threading
import time

import submitit
from rich.console import Console

from .plan import SweepPlan
from .retry import Retrier
from .spec import Cell
from .state import CellState, cell_state

POLL_S = 1.0


class CtrlC:
    """Ctrl-C as a flag the polling loops check (`check()` raises KeyboardInterrupt there).

    Left to Python's default handler, the KeyboardInterrupt is raised wherever the main thread
    happens to be, and submitit's job polling can swallow it: the sweep then carried on as if
    the interrupted cell had simply failed (seen under load). Outside the main thread signals
    cannot be handled; the default behaviour stays."""

    def __init__(self) -> None:
        self.hit, self.previous = False, None

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, *_) -> None:
        self.hit = True

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class Progress:
    """One line per cell of the plan that ended since the last call: n/N done, its score or reason;
    or, for a cell the sweep retries by the cause of its end (retry.py), that retry."""

    def __init__(self, plan: SweepPlan, console: Console, submitted: set[str] | None = None) -> None:
        self.plan, self.console = plan, console
        self.reported: set[str] = set()  # cells whose end was printed
        # Cells this launch submitted (the submitter's set, which grows): only their ends are
        # retried; a cell still waiting for its turn may show its previous launch's failure.
        self.submitted = submitted if submitted is not None else set(c.name for c in plan.cells)
        self.retrier = Retrier(plan.run)
        self.cells: dict[str, Cell] = {c.name: c for c in plan.cells}  # as last submitted

    def states(self) -> list[CellState]:
        return [cell_state(self.plan.run, name) for name in self.cells]

    def print_ended(self, states: list[CellState] | None = None) -> list[Cell]:
        """Print what ended; return the cells to submit again (a retry by cause)."""
        states = states or self.states()
        ended = [s for s in states if s.status in ("done", "failed", "oom") and s.name not in self.reported
                 and (s.name in self.submitted or s.job_id is None)]  # None: failed without running
        done = sum(s.status == "done" for s in states) - sum(s.status == "done" for s in ended)
        again: list[Cell] = []
        for s in ended:
            retry, decision = (self.retrier.after_end(self.cells[s.name], s) if s.name in self.submitted
                               else (None, None))
            if retry is not None:
                self.cells[s.name] = retry
                again.append(retry)
                self.console.print(f"retrying {s.name}: {decision.cause} -> {decision.action} ({decision.note})",
                                   highlight=False, soft_wrap=True)
                continue
            self.reported.add(s.name)
            done += s.status == "done"
            what = s.score or "no score" if s.status == "done" else s.detail
            if decision is not None and decision.cause != "failed":
                what = f"{what} [{decision.cause}: {decision.action}, {decision.note}]"
            self.console.print(f"[{done}/{len(states)} done] {s.name} {s.status}: {what}", highlight=False,
                               soft_wrap=True)
        return again


def wait_for_cells(progress: Progress, ctrl_c: CtrlC, resubmit=None) -> list[CellState]:
    """Wait until no cell of the plan runs or is queued; the cells' states then.

    resubmit(cell): submits a cell the sweep retries (SLURM; the local scheduler retries its own)."""
    while True:
        ctrl_c.check()
        states = progress.states()
        again = progress.print_ended(states)
        if again and resubmit is not None:
            for cell in again:
                resubmit(cell)
            continue
        # Slurm jobs still queued count as pending with a job id: keep waiting for those too.
        if all(s.status != "running" and not (s.status == "pending" and s.job_id) for s in states):
            return states
        for _ in range(5):
            time.sleep(POLL_S)
            ctrl_c.check()


def interrupted(plan: SweepPlan, started: list[submitit.Job], console: Console) -> int:
    """Ctrl-C: local jobs (which got the same SIGINT) end and keep their checkpoints; SLURM
    jobs run on. Every job is recorded in its job.json, so a relaunch resumes what is left."""
    # The terminal's SIGINT may not have reached a detached local job.
    cancel_and_wait([job for job in started if isinstance(job, submitit.local.local.LocalJob)])
    states = [cell_state(plan.run, c.name) for c in plan.sweep.cells]
    done = sum(s.status == "done" for s in states)
    still = "; its SLURM jobs keep running (scancel to stop them)" if plan.sweep.executor.kind == "slurm" else ""
    console.print(f"interrupted: {done}/{len(states)} cells done{still}; run the same command again to resume "
                  f"the rest from their checkpoints (state: attempt-dist sweep status {plan.run})", highlight=False)
    return 130


def cancel_and_wait(jobs: list[submitit.Job], wait_s: float = 60) -> None:
    """Cancel local jobs (SIGINT: the trainer stops, its checkpoints stay) and give them
    `wait_s` seconds to end."""
    for job in jobs:
        job.cancel(check=False)
    until = time.time() + wait_s
    while any(not job.done() for job in jobs) and time.time() < until:
        time.sleep(0.2)
