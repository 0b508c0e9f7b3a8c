"""Sweeps: a YAML grid of training runs, submitted with submitit (SLURM, local or debug).

    from attempt_dist.sweep import load_sweep, launch, status_table
    sweep = load_sweep("launch/sweeps/scaling.yaml")
    launch(sweep, "runs/scaling", dry_run=True)

schema.py declares the sweep file's format (executor.py its executor block), spec.py reads and
expands it into cells, check.py runs every cell through the trainer's parser, jobs.py is what
each job runs, launch.py submits and waits, state.py reads the folder a sweep writes into.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .state import STATUSES, CellState, collect_states

# spec.py and launch.py import the trainer's config and the methods, and so torch (over a
# second): they load on first use, so that `sweep status` and --help start without them.
_LAZY = {"launch": ".launch", "plan": ".launch", "print_plan": ".launch", "Cell": ".spec", "ExecutorSpec": ".spec",
         "Sweep": ".spec", "load_sweep": ".spec", "parse_sweep": ".spec", "train_argv": ".spec"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _SweepPackage(types.ModuleType):
    def __setattr__(self, name, value):
        # Importing the submodule sweep/launch.py binds `launch` here to that module; the
        # package's `launch` is the function, as when this file imported it eagerly.
        if name == "launch" and isinstance(value, types.ModuleType):
            value = value.launch
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _SweepPackage

__all__ = ["Cell", "CellState", "ExecutorSpec", "STATUSES", "Sweep", "collect_states", "launch",
           "load_sweep", "parse_sweep", "plan", "print_plan", "status_table", "train_argv",
           "default_run_dir"]

_STYLE = {"done": "green", "running": "cyan", "failed": "red", "oom": "magenta", "pending": "yellow"}


def default_run_dir(sweep: Sweep) -> Path:
    return Path("runs") / sweep.name


def status_table(run: str | Path) -> tuple[Table, dict[str, int]]:
    states = collect_states(Path(run))
    table = Table(title=f"sweep status: {run}")
    table.add_column("cell", no_wrap=True)  # names are what users copy: never fold them
    for col in ("status", "job", "score", "detail"):
        table.add_column(col, overflow="fold")
    counts = {s: 0 for s in STATUSES}
    for st in states:
        counts[st.status] += 1
        table.add_row(st.name, f"[{_STYLE[st.status]}]{st.status}[/]", st.job_id or "-", st.score or "-", st.detail)
    return table, counts


def print_status(run: str | Path, console: Console | None = None) -> dict[str, int]:
    console = console or Console()
    table, counts = status_table(run)
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return counts
