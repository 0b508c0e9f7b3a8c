"""The recipe's second step: what a launch submits, from the sweep and what its folder holds.

A cell whose result.json exists is skipped, as are one that ran out of memory (unless
retry_oom) and one whose job is still running or queued; everything else is (re)submitted, and
a cell with checkpoints resumes from them (jobs.py). A library stage (one per backbone and
source set) is built only where a cell to submit needs it and it is neither built nor building.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .retry import with_recorded_layout
from .spec import Cell, Library, Sweep
from .state import cell_state, library_state


@dataclass
class SweepPlan:
    run: Path
    sweep: Sweep
    cells: list[Cell] = field(default_factory=list)        # to submit
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    libraries: list[Library] = field(default_factory=list)  # to build


def plan_sweep(sweep: Sweep, run: Path, *, retry_oom: bool = False) -> SweepPlan:
    out = SweepPlan(Path(run), sweep)
    for cell in sweep.cells:
        state = cell_state(run, cell.name)
        if state.status == "done":
            out.skipped[cell.name] = "done"
        elif state.status == "oom" and not retry_oom:
            out.skipped[cell.name] = "oom (did not fit; --retry-oom to run again)"
        elif state.status == "running":
            out.skipped[cell.name] = f"running ({state.detail})"
        elif state.status == "pending" and state.job_id:  # queued, or requeued and held by SLURM
            out.skipped[cell.name] = f"queued ({state.detail})"
        else:
            out.cells.append(with_recorded_layout(run, cell))  # a re-planned layout is kept
    needed = {c.library for c in out.cells if c.library}
    for key in sorted(needed):
        if library_state(run, key).status not in ("done", "running"):
            out.libraries.append(sweep.libraries[key])
    return out
