"""A sweep launch, step by step: (read, by the caller) -> plan -> submit -> watch -> report.

    sweep = load_sweep("launch/sweeps/scaling.yaml")   # read.py
    run_sweep(sweep, "runs/scaling", dry_run=True)

configuration.py first checks that the folder holds this configuration (recorded at the first
launch), plan.py decides what to submit, submit.py submits it (all at once on SLURM; schedule.py
starts the jobs one by one on the local and debug executors, within the run's deadline),
watch.py waits and prints each cell's end, report.py prints the plan and the outcome.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..prepare import check_sweep_prepared
from ..training.runlock import FolderLock
from .configuration import check_configuration, plan_after_set_aside, print_changes, settle_configuration
from .data_check import data_lines
from .plan import plan_sweep
from .report import print_plan, report_outcome
from .resources import plan_lines, with_planned_memory
from .schedule import Deadline, run_scheduled
from .shared_library import link_shared_libraries
from .spec import Sweep
from .submit import Submitter, check_executors, submit_slurm, write_sweep_json
from .watch import CtrlC, Progress, interrupted, wait_for_cells


def run_sweep(sweep: Sweep, run: Path, *, dry_run: bool = False, wait: bool | None = None,
              retry_oom: bool = False, console: Console | None = None, deadline_s: float | None = None,
              rerun_changed: bool = False) -> int:
    """Submit what is left of the sweep; return 0 when nothing failed (or nothing was waited on).

    wait: wait for SLURM jobs to end (the local and debug executors always wait).
    deadline_s: seconds for the whole launch (local and debug executors only): cells and
    libraries not started by then are not started, running local jobs are cancelled; both get
    failure.json and run again on the next launch.
    rerun_changed: a relaunch whose cells resolve differently from what the folder holds is
    refused (configuration.py); with this, the changed cells' folders are set aside and they
    run again.

    One launch at a time owns the sweep run folder (a second exits 2 naming the first); a dry
    run only reads, so it needs no lock."""
    deadline = Deadline.start(deadline_s, sweep.executor.kind)
    console = console or Console()
    run = Path(run).resolve()
    check_sweep_prepared(sweep)  # with ATTEMPT_DIST_PREPARED: the cache holds every cell's weights and data
    if dry_run:
        _, changes = check_configuration(sweep, run, rerun_changed=rerun_changed)
        print_changes(changes, run, console, dry_run=True)
        # SLURM `--ds-config auto` cells ask for their plan's host memory; one a node cannot hold stops here.
        sweep, host_plans = with_planned_memory(sweep)
        print_plan(plan_after_set_aside(plan_sweep(sweep, run, retry_oom=retry_oom), changes), console)
        for line in plan_lines(host_plans) + data_lines(sweep):
            console.print(line, highlight=False, soft_wrap=True)
        return 0
    with FolderLock(run, "sweep launch"):
        settle_configuration(sweep, run, rerun_changed=rerun_changed, console=console)  # before anything is written
        link_shared_libraries(sweep, run)  # before planning: a shared library may be built already
        check_executors(plan_sweep(sweep, run, retry_oom=retry_oom))  # no sbatch: said before planning memory
        sweep, _ = with_planned_memory(sweep)
        plan = plan_sweep(sweep, run, retry_oom=retry_oom)
        write_sweep_json(sweep, run)
        if not plan.cells:
            console.print(f"nothing to do: all {len(sweep.cells)} cells are done or skipped")
            return 0
        submitter = Submitter(plan)
        progress = Progress(plan, console, submitter.submitted)
        try:
            with CtrlC() as ctrl_c:
                if sweep.executor.kind == "slurm":
                    submit_slurm(submitter, console)
                    if not wait:
                        console.print(f"submitted; follow with: attempt-dist sweep status {run}")
                        return 0
                else:
                    run_scheduled(submitter, progress, console, ctrl_c, deadline)
                resubmit = (lambda cell: submitter.submit_cells([cell])) if sweep.executor.kind == "slurm" else None
                return report_outcome(wait_for_cells(progress, ctrl_c, resubmit), console)
        except KeyboardInterrupt:
            return interrupted(plan, submitter.started, console)
