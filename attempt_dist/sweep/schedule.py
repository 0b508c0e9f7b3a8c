"""The local and debug executors' scheduler, and the whole run's deadline.

SLURM orders a sweep's jobs itself (a cell depends on its library job); on one machine the
sweep does: library stages first, then the cells, a cell once its library is built, and at most
`array_parallelism` jobs alive. A cell whose library failed is not started (failure.json says
which library).

A local or debug launch may have a deadline for the whole run (`deadline_s`, `sweep --deadline`):
once it passes, the scheduler starts nothing more (each cell or library left gets failure.json
saying it was not started) and cancels its running local jobs (failure.json: cut at the
deadline). Neither counts as done, so the same command run again runs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import submitit
from rich.console import Console

from ..errors import UserError
from ..atomic_files import write_json_atomic
from ..finished.record import FAILURE_FILENAME, RESULT_FILENAME, SCHEMA_VERSION
from .jobs import set_aside_failure
from .spec import Cell, Library
from .state import LIBRARY_DONE, cell_run_dir, library_dir, library_state
from .submit import Submitter
from .watch import POLL_S, CtrlC, Progress, cancel_and_wait


@dataclass(frozen=True)
class Deadline:
    """The whole run's deadline (local and debug executors): `seconds` after the launch began."""
    seconds: float
    at: float  # time.monotonic() when it passes

    @classmethod
    def start(cls, seconds: float | None, executor_kind: str) -> Deadline | None:
        """The deadline `seconds` from now (None without one); refused on SLURM and below 0."""
        if seconds is None:
            return None
        if executor_kind == "slurm":
            raise UserError("--deadline is for the local and debug executors; on SLURM each job has its executor `time`")
        if seconds < 0:
            raise UserError(f"--deadline must be >= 0 seconds, got {seconds:g}")
        return cls(float(seconds), time.monotonic() + seconds)

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def not_started(self) -> str:
        return (f"not started: the sweep's --deadline of {self.seconds:g} s was reached; "
                "run the same command again to run it")

    def cut(self) -> str:
        return f"cut at the sweep's --deadline of {self.seconds:g} s"


Entry = tuple[str, "Cell | Library"]  # ("library" | "cell", what it builds or trains)


def run_scheduled(submitter: Submitter, progress: Progress, console: Console, ctrl_c: CtrlC,
                  deadline: Deadline | None = None) -> None:
    """Start the plan's libraries and cells as their turn comes; return when all have ended or
    the deadline stopped them."""
    plan = submitter.plan
    queue: list[Entry] = [("library", lib) for lib in plan.libraries] + [("cell", c) for c in plan.cells]
    running: list[tuple[str, Cell | Library, submitit.Job]] = []
    building = {lib.key for lib in plan.libraries}
    limit = plan.sweep.executor.array_parallelism or 1
    debug = plan.sweep.executor.kind == "debug"
    while queue or running:
        ctrl_c.check()
        for item in list(running):
            if item[2].done():
                running.remove(item)
                if item[0] == "library":
                    building.discard(item[1].key)
                else:
                    # A retry by cause goes first: its library is built, its checkpoints are fresh.
                    queue[:0] = [("cell", cell) for cell in progress.print_ended()]
        if deadline is not None and deadline.passed():
            _stop_at_deadline(plan.run, console, queue, running, deadline)
            return
        for entry in list(queue):
            if len(running) >= limit:
                break
            kind, obj = entry
            if kind == "cell" and obj.library:
                if obj.library in building or library_state(plan.run, obj.library).status == "running":
                    continue  # wait for its library (ours, or one another launch builds: a shared one)
                if library_state(plan.run, obj.library).status != "done":
                    queue.remove(entry)
                    _fail_without_running(plan.run, obj, f"library stage {obj.library} failed; see "
                                                         f"{library_dir(plan.run, obj.library)}")
                    continue
            queue.remove(entry)
            job = submitter.submit_library(obj) if kind == "library" else submitter.submit_cells([obj])[0]
            console.print(f"started {kind} {_name(kind, obj)} (job {job.job_id})")
            if debug:
                job.result()  # debug jobs run in this process when asked for their result
            running.append((kind, obj, job))
        if queue or running:
            time.sleep(0 if debug else POLL_S)


def _name(kind: str, obj: Cell | Library) -> str:
    return obj.key if kind == "library" else obj.name


def _fail_without_running(run: Path, cell: Cell, reason: str) -> None:
    write_json_atomic(cell_run_dir(run, cell.name) / FAILURE_FILENAME, {
        "schema": SCHEMA_VERSION, "status": "failed", "reason": reason, "config": cell.to_json(),
    })


def _stop_at_deadline(run: Path, console: Console, queue: list[Entry], running: list, deadline: Deadline) -> None:
    """The run's deadline passed: nothing queued starts, running local jobs are cancelled.

    Each gets failure.json (a cell in its run folder, a library in its own), so `sweep status`
    and the next launch see them as failed, not done: the same command runs them again."""
    for kind, obj in queue:
        if kind == "cell":
            _fail_without_running(run, obj, deadline.not_started())
        else:
            write_json_atomic(library_dir(run, obj.key) / "run" / FAILURE_FILENAME, {
                "schema": SCHEMA_VERSION, "status": "failed", "reason": deadline.not_started(),
                "config": {"library": obj.key}})
        console.print(f"not started: {kind} {_name(kind, obj)} (the sweep's --deadline of {deadline.seconds:g} s "
                      "was reached)", highlight=False, soft_wrap=True)
    queue.clear()
    cancel_and_wait([job for _, _, job in running])
    for kind, obj, job in running:
        name = _name(kind, obj)
        run_dir = library_dir(run, obj.key) / "run" if kind == "library" else cell_run_dir(run, name)
        finished = (library_dir(run, obj.key) / LIBRARY_DONE).exists() if kind == "library" \
            else (run_dir / RESULT_FILENAME).exists()
        if finished:  # it ended on its own just before the cut
            continue
        set_aside_failure(run_dir)  # the job's own "interrupted" record stays beside it
        write_json_atomic(run_dir / FAILURE_FILENAME, {
            "schema": SCHEMA_VERSION, "status": "failed", "reason": deadline.cut(),
            "config": obj.to_json() if kind == "cell" else {"library": obj.key}})
        console.print(f"cut: {kind} {name} (job {job.job_id}) at the sweep's --deadline of {deadline.seconds:g} s",
                      highlight=False, soft_wrap=True)
    running.clear()
