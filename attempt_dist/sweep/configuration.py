"""A sweep folder holds one configuration: what each cell trains, recorded at the first launch
and compared at every relaunch, so a folder never mixes results of two configurations.

    RUN/configuration.json    {"cells": {cell: {option: value}}, "libraries": {...}, "replaced": [...]}
    RUN/replaced/<cell>.<n>/  a cell folder that --rerun-changed set aside (its replaced.json says why)

What a cell trains: its options as the trainer resolves them (resolved.py: the method's defaults
filled in, so `lr` written out at its default equals `lr` left out; a custom trainer's options are
its own, compared as written) and how many ranks share its batch (the micro-batch is per rank).
Each library's definition (backbone, sources, schedule, options) is recorded too. Not part of it:
cluster settings that leave the result alone (partition, account, qos, time, memory, setup,
requeues, max_retries, an --executor-file that sets only those), train options that say how and
where a cell runs rather than what it trains (run_settings below), the options the sweep sets per
launch (output_dir, resume, overwrite), and where the folder is (a path inside it is recorded
relative to it). An option only one side has (code that added or renamed one) is not compared,
as on --resume (training/resume_config.py).

A relaunch that resolves differently where the folder holds the difference (a changed or removed
cell that has a folder, a changed library that was built) is refused before anything is written
or submitted, with the list of differences. `--rerun-changed` sets those cell folders aside
(recorded here, with what changed) and runs the changed cells in fresh ones; a built library
cannot be rebuilt in place, so its change is refused even then.

Cells added to the grid are accepted, and named: every result in the folder is still what the
current file says its cell trains, which is the rule that matters, and growing a grid (more
seeds, another task) is how a sweep is extended: refusing it would teach users to pass the
override flag by habit, where it should mean "I changed these on purpose". A renamed model or
task is not only an addition: its old cells are removed ones, refused while they hold results.
A changed or removed cell that never ran (no folder) holds nothing of the old configuration.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..atomic_files import read_json, write_json_atomic
from ..errors import UserError
from .executor import ExecutorSpec
from .plan import SweepPlan
from .spec import DEFAULT_TRAINER, Sweep
from .state import REPLACED_DIR, cell_dir, cell_state, library_dir, read_json_or_empty

RECORD = "configuration.json"
REPLACED_NOTE = "replaced.json"  # inside a set-aside cell folder: why it was set aside
MANAGED = ("output_dir", "resume", "overwrite")  # set by the sweep for each launch, not by the file
# Train options declared run_setting=True say how and where a cell runs, not what it trains:
# editing them (a longer dist_timeout after a lost rank) must not make finished cells stale.
SHOWN = 12  # lines of differences a refusal lists


def run_settings() -> frozenset[str]:
    """The train options declared run_setting=True (training/options.py)."""
    from ..training.config import DECLARED_OPTIONS

    return frozenset(name for name, option in DECLARED_OPTIONS.items() if option.run_setting)


def sweep_configuration(sweep: Sweep, run: Path, *, resolve: bool = True) -> dict:
    """What each cell of `sweep` trains in the folder `run`, and each library's definition.
    resolve: through the trainer's parser (the default trainer only), else as the file gives them."""
    from .resolved import cell_argv, resolved_train, trainer_parser

    parser = trainer_parser() if resolve and sweep.trainer == DEFAULT_TRAINER else None
    cells = {}
    for cell in sweep.cells:
        if parser is not None:
            options = resolved_train(parser, cell_argv(cell, run, sweep.libraries.get(cell.library))).to_dict()
        else:
            options = _as_written(cell.to_json())
        cells[cell.name] = _portable({**_trained_by(options), "ranks": _ranks(cell.executor)}, run)
    libraries = {key: _portable({"model": lib.model, "sources": list(lib.sources), "epochs": lib.epochs,
                                 "max_steps": lib.max_steps,
                                 **{f"train.{k}": v for k, v in _trained_by(lib.train).items()}}, run)
                 for key, lib in sweep.libraries.items()}
    return {"resolved": parser is not None, "cells": cells, "libraries": libraries}


def _trained_by(options: dict) -> dict:
    return {k: v for k, v in options.items() if k not in MANAGED and k not in run_settings()}


def _as_written(cell_json: dict) -> dict:
    """A cell's options as its sweep file gives them (Cell.to_json), with what its grid sets."""
    return {"model": cell_json["model"], "method": cell_json["method"], "tasks": list(cell_json["tasks"]),
            "seed": cell_json["seed"], **cell_json.get("train", {})}


def _ranks(spec: ExecutorSpec) -> int:
    # The debug executor runs a cell in this process, one rank (submit.make_executor sets no layout).
    return 1 if spec.kind == "debug" else spec.world_size


def _portable(value, run: Path):
    """`value` as JSON keeps it (tuples are lists), paths inside the sweep folder relative to it."""
    prefix = str(run) + os.sep

    def relative(v):
        if isinstance(v, str) and v.startswith(prefix):
            return "{sweep}/" + v[len(prefix):]
        if isinstance(v, list):
            return [relative(x) for x in v]
        if isinstance(v, dict):
            return {k: relative(x) for k, x in v.items()}
        return v

    return relative(json.loads(json.dumps(value, default=str)))


def read_configuration(run: Path) -> dict | None:
    """The folder's record; for a folder launched before records were kept, its sweep.json's
    cells as written (so an edited relaunch is still caught); None for a new folder."""
    path = Path(run) / RECORD
    if path.exists():
        try:
            record = read_json(path)
        except (OSError, ValueError) as err:
            raise UserError(f"{path} cannot be read ({err}); it records what this sweep folder holds: restore it, "
                            "or launch into a new --output-dir") from None
        if isinstance(record, dict) and isinstance(record.get("cells"), dict) and \
                all(isinstance(options, dict) for options in record["cells"].values()):
            return record
        raise UserError(f"{path} is not a sweep configuration record; restore it, or launch into a new --output-dir")
    legacy = read_json_or_empty(Path(run) / "sweep.json") if (Path(run) / "sweep.json").exists() else {}
    if not isinstance(legacy.get("cells"), list):
        return None
    cells = {}
    for cell in legacy["cells"]:
        try:
            options = _as_written(cell)
        except (KeyError, TypeError):  # not a sweep.json this code wrote: nothing to compare with
            return None
        try:
            options["ranks"] = _ranks(ExecutorSpec.model_validate(cell.get("executor", {})))
        except ValueError:  # an executor block this version reads differently: ranks not compared
            pass
        cells[cell["name"]] = _portable(_trained_by(options), Path(run))
    return {"resolved": False, "cells": cells, "libraries": {}, "replaced": []}


@dataclass
class Changes:
    """How the current sweep differs from the folder's record."""

    changed: dict[str, list[str]] = field(default_factory=dict)  # cell -> ["option old -> new", ...]
    new: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    libraries: dict[str, list[str]] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # changed or removed cells that have a folder
    built: list[str] = field(default_factory=list)  # changed libraries that have a folder

    def __bool__(self) -> bool:
        return bool(self.changed or self.new or self.removed or self.libraries)

    @property
    def refused(self) -> bool:
        return bool(self.held or self.built)


def compare(record: dict, sweep: Sweep, run: Path) -> Changes:
    """The differences between the record and `sweep` in the folder `run`."""
    resolved = bool(record.get("resolved"))
    now = sweep_configuration(sweep, run, resolve=resolved)
    old_cells, new_cells = record["cells"], now["cells"]
    out = Changes(new=[n for n in new_cells if n not in old_cells], removed=[n for n in old_cells if n not in new_cells])
    for name in new_cells.keys() & old_cells.keys():
        lines = differences(old_cells[name], new_cells[name], both_sides_only=resolved)
        if lines:
            out.changed[name] = lines
    old_libs = {k: v for k, v in (record.get("libraries") or {}).items() if isinstance(v, dict)} \
        if isinstance(record.get("libraries"), dict) else {}
    for key in now["libraries"].keys() & old_libs.keys():
        lines = differences(old_libs[key], now["libraries"][key], both_sides_only=False)
        if lines:
            out.libraries[key] = lines
    out.held = [n for n in sorted(out.changed) + out.removed if _has_files(cell_dir(run, n))]
    out.built = [k for k in sorted(out.libraries) if library_dir(run, k).exists()]
    return out


def differences(old: dict, new: dict, *, both_sides_only: bool) -> list[str]:
    """"option old -> new" for each option whose value differs. both_sides_only: an option one
    side lacks is not compared (resolved options: only code adds or renames one)."""
    keys = (old.keys() & new.keys()) if both_sides_only else (old.keys() | new.keys())
    return [f"{key} {_short(old.get(key, _NOT_SET))} -> {_short(new.get(key, _NOT_SET))}"
            for key in sorted(keys) if old.get(key, _NOT_SET) != new.get(key, _NOT_SET)]


_NOT_SET = object()  # an option the file gives on one side only


def _short(value, limit: int = 60) -> str:
    text = "(not set)" if value is _NOT_SET else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def listing(changes: Changes) -> list[str]:
    """One line per difference (at most SHOWN, then how many more)."""
    lines = [f"  changed {n}: {'; '.join(c)}" + ("" if n in changes.held else " (never ran)")
             for n, c in sorted(changes.changed.items())]
    lines += [f"  removed {n}" + (" (ran in this folder)" if n in changes.held else " (never ran)") for n in changes.removed]
    lines += [f"  library {k}: {'; '.join(c)}" for k, c in sorted(changes.libraries.items())]
    lines += [f"  new {n}" for n in changes.new]
    return lines[:SHOWN] + ([f"  ... and {len(lines) - SHOWN} more"] if len(lines) > SHOWN else [])


def check_configuration(sweep: Sweep, run: Path, *, rerun_changed: bool) -> tuple[dict | None, Changes]:
    """The folder's record and the differences, read only; UserError when the launch may not go on."""
    record = read_configuration(run)
    changes = compare(record, sweep, run) if record is not None else Changes()
    head = f"{run} holds another configuration of this sweep (recorded in {run / RECORD}):"
    if changes.built:
        raise UserError("\n".join([head, *listing(changes),
                                   f"library {', '.join(changes.built)} is built already and cannot be rebuilt in place; "
                                   f"relaunch with the recorded file ({run / 'sweep.yaml'}) or choose a new --output-dir"]))
    if changes.refused and not rerun_changed:
        raise UserError("\n".join([head, *listing(changes),
                                   f"relaunch with the recorded file ({run / 'sweep.yaml'}), choose a new --output-dir, "
                                   f"or pass --rerun-changed to run the changed cells again in fresh folders "
                                   f"(the old ones are kept in {run / REPLACED_DIR})"]))
    busy = [f"{n} ({s.detail})" for n in changes.held for s in [cell_state(run, n)]
            if s.status == "running" or (s.status == "pending" and s.job_id)]
    if busy:
        raise UserError(f"--rerun-changed: cell(s) {', '.join(busy)} still run or wait in the queue; cancel them "
                        "(scancel JOB) or let them end, then relaunch")
    return record, changes


def settle_configuration(sweep: Sweep, run: Path, *, rerun_changed: bool, console: Console) -> None:
    """Before a launch writes anything (under its lock): record the configuration at the first
    launch; at a relaunch refuse one the folder does not hold, or with `rerun_changed` set the
    changed and removed cells' folders aside and record the new configuration."""
    record, changes = check_configuration(sweep, run, rerun_changed=rerun_changed)
    replaced = record.get("replaced") if record and isinstance(record.get("replaced"), list) else []
    for name in changes.held:
        why = "changed" if name in changes.changed else "removed from the sweep"
        replaced.append(set_aside(run, name, why, changes.changed.get(name, [])))
        # Each move recorded at once: a launch stopped between two still says where the moved went.
        write_json_atomic(Path(run) / RECORD, {**record, "replaced": replaced})
    print_changes(changes, run, console)
    now = sweep_configuration(sweep, run)
    if not (Path(run) / RECORD).exists() or changes or {k: record.get(k) for k in now} != now:
        write_json_atomic(Path(run) / RECORD, {**now, "replaced": replaced})


def print_changes(changes: Changes, run: Path, console: Console, *, dry_run: bool = False) -> None:
    """The differences a launch accepts, and where the old cell folders go."""
    if not changes:
        return
    kept = f"; {len(changes.held)} old cell folder(s) {'to be ' * dry_run}kept in {run / REPLACED_DIR}" \
        if changes.held else ""
    console.print("\n".join([f"the sweep changed: {len(changes.new)} new, {len(changes.changed)} changed, "
                             f"{len(changes.removed)} removed cell(s){kept}", *listing(changes)]),
                  highlight=False, markup=False, soft_wrap=True)


def set_aside(run: Path, name: str, why: str, changed: list[str]) -> dict:
    """Move RUN/cells/<name> to RUN/replaced/<name>.<n> with a note of why; the note, for the record."""
    folder = cell_dir(run, name)
    n = 1
    while (Path(run) / REPLACED_DIR / f"{name}.{n}").exists():
        n += 1
    target = Path(run) / REPLACED_DIR / f"{name}.{n}"
    note = {"cell": name, "why": why, "changes": changed, "folder": f"{REPLACED_DIR}/{target.name}",
            "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        write_json_atomic(folder / REPLACED_NOTE, note)
        target.parent.mkdir(exist_ok=True)
        os.replace(folder, target)
    except OSError as err:
        raise UserError(f"cannot move {folder} aside to {target} ({err.strerror}); free the folder and relaunch") from None
    return note


def plan_after_set_aside(plan: SweepPlan, changes: Changes) -> SweepPlan:
    """A dry run's plan as it will be once --rerun-changed set the changed cells aside."""
    for name in changes.held:
        if name in changes.changed:
            plan.skipped.pop(name, None)
            if all(c.name != name for c in plan.cells):
                plan.cells.append(plan.sweep.cell(name))
    return plan

