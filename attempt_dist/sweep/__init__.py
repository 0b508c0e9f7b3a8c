"""Sweeps: a YAML grid of training runs, submitted with submitit (SLURM, local or debug).

    from attempt_dist.sweep import load_sweep, launch, status_table
    sweep = load_sweep("launch/sweeps/scaling.yaml")
    launch(sweep, "runs/scaling", dry_run=True)

spec.py parses and expands sweep files, jobs.py is what each job runs, launch.py submits and
waits, state.py reads the folder a sweep writes into.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .launch import launch, plan, print_plan
from .spec import Cell, ExecutorSpec, Sweep, load_sweep, parse_sweep, train_argv
from .state import STATUSES, CellState, collect_states

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
