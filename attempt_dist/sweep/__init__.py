"""Sweeps: a YAML grid of training runs, submitted with submitit (SLURM, local or debug).

    from attempt_dist.sweep import load_sweep, run_sweep, print_status
    sweep = load_sweep("launch/sweeps/scaling.yaml")
    run_sweep(sweep, "runs/scaling", dry_run=True)

A launch is a recipe (recipe.py): read -> plan -> submit -> watch -> report.
    read.py      reads a sweep file: schema.py declares its format (executor.py the executor
                 block), spec.py expands it into cells, check.py runs every cell through the
                 trainer's parser
    configuration.py  the folder holds one configuration: recorded, compared at each relaunch
    plan.py      what to submit, from what the sweep folder already holds
    submit.py    command lines, submitit executors, job.json and sweep.json
    schedule.py  the local and debug executors' scheduler and the run's deadline
    watch.py     waiting, a line per ended cell, Ctrl-C
    report.py    the plan, the outcome and `sweep status` as tables
jobs.py is what each job runs; state.py reads the folder a sweep writes into.
"""

from __future__ import annotations

import importlib

from .report import print_plan, print_status, status_table
from .state import STATUSES, CellState, collect_states, default_run_dir

# These modules import the trainer's config and the methods, and so torch (over a second):
# they load on first use, so that `sweep status` and --help start without them.
_LAZY = {"run_sweep": ".recipe", "plan_sweep": ".plan", "SweepPlan": ".plan", "load_sweep": ".read",
         "parse_sweep": ".read", "Cell": ".spec", "ExecutorSpec": ".spec", "Sweep": ".spec", "train_argv": ".spec"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Cell", "CellState", "ExecutorSpec", "STATUSES", "Sweep", "SweepPlan", "collect_states",
           "default_run_dir", "load_sweep", "parse_sweep", "plan_sweep", "print_plan", "print_status", "run_sweep",
           "status_table", "train_argv"]
