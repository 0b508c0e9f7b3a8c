"""What a sweep shows: its plan (--dry-run), the end of a launch, and `sweep status`.

Light on purpose: `sweep status` imports this module, and neither torch nor the trainer's
config (the plan's types are only named for the type checker).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from ..finished.record import speed_text
from .retry import summary as retry_summary
from .state import STATUSES, CellState, collect_states

if TYPE_CHECKING:
    from .plan import SweepPlan

_STYLE = {"done": "green", "running": "cyan", "failed": "red", "oom": "magenta", "pending": "yellow"}


# A file or pipe has no width: rich then assumes 80 columns and folds a wide table one letter
# per line. Unwrapped lines read better in a file (and `less -S` scrolls them).
PIPED_WIDTH = 400


def _for_tables(console: Console) -> Console:
    return console if console.is_terminal else Console(file=console.file, width=PIPED_WIDTH)


def print_plan(p: SweepPlan, console: Console) -> None:
    table = Table(title=f"sweep {p.sweep.name}: {len(p.sweep.cells)} cells -> {p.run}", show_lines=False)
    table.add_column("cell", no_wrap=True)
    for col in ("model", "method", "tasks", "seed", "action", "executor", "library", "options"):
        table.add_column(col, overflow="fold")
    from .resolved import library_inputs  # a plan's types are loaded already; `sweep status` needs none

    todo = {c.name for c in p.cells}
    for cell in p.sweep.cells:
        action = "submit" if cell.name in todo else f"skip: {p.skipped.get(cell.name, '')}"
        opts = " ".join([f"{k}={v}" for k, v in cell.train.items() if k not in ("data_dir",)]
                        + [library_inputs(cell, p.sweep.libraries.get(cell.library))]).strip()
        table.add_row(cell.name, cell.model, cell.variant, ",".join(cell.tasks), str(cell.seed), action,
                      cell.executor.summary(), cell.library or "-", opts)
    _for_tables(console).print(table)
    if p.libraries:
        libs = Table(title="library stages (run before the cells that need them)")
        for col in ("library", "model", "sources", "stages", "executor"):
            libs.add_column(col, overflow="fold")
        for lib in p.libraries:
            libs.add_row(lib.key, lib.model, ",".join(lib.sources), lib.stages, p.sweep.executor.summary())
        _for_tables(console).print(libs)
    console.print(f"{len(p.cells)} job(s) to submit, {len(p.skipped)} skipped, {len(p.libraries)} library stage(s)")


def report_outcome(states: list[CellState], console: Console) -> int:
    """The submitted cells that did not end done, one line each, and the count; 1 if any."""
    failed = [s for s in states if s.status in ("failed", "oom", "pending")]
    for s in failed:
        console.print(f"[red]{s.status}[/] {s.name}: {s.detail}", highlight=False)
    done = sum(s.status == "done" for s in states)
    console.print(f"{done}/{len(states)} submitted cells done; {len(failed)} not")
    return 1 if failed else 0


def status_table(run: str | Path) -> tuple[Table, dict[str, int]]:
    states = collect_states(Path(run))
    table = Table(title=f"sweep status: {run}")
    table.add_column("cell", no_wrap=True)  # names are what users copy: never fold them
    for col in ("status", "job", "score", "tokens/s", "MFU", "detail", "retries"):
        table.add_column(col, overflow="fold", justify="right" if col in ("tokens/s", "MFU") else "left")
    counts = {s: 0 for s in STATUSES}
    for st in states:
        counts[st.status] += 1
        speed = speed_text(st.speed)  # steady state: how well the cell used its device
        table.add_row(st.name, f"[{_STYLE[st.status]}]{st.status}[/]", st.job_id or "-", st.score or "-",
                      speed["tokens/s"], speed["MFU"], st.detail, retry_summary(st.retries) or "-")
    return table, counts


def status_json(run: str | Path) -> dict:
    """`sweep status --json`: every cell's state with its retry history, and the counts."""
    states = collect_states(Path(run))
    return {"run": str(run), "cells": [s.to_json() for s in states],
            "counts": {status: sum(s.status == status for s in states) for status in STATUSES}}


def print_status(run: str | Path, console: Console | None = None) -> dict[str, int]:
    console = console or Console()
    table, counts = status_table(run)
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return counts
