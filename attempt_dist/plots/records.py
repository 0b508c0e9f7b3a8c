"""Result records of a results folder, read into one typed `Record` per run.

Any folder works: a sweep's RUN_DIR (cells/<cell>/run/result.json with cells/<cell>/cell.json
beside it) or a tree of plain training output folders. A run's grid coordinates come from the
sweep's cell.json when there is one, else from the record's resolved config.

`read_grid_record` reads each result.json / failure.json through attempt_dist.finished.record (the typed run
record) and adds the grid coordinates; a file it cannot read (not JSON, not an object, another
schema, a required field missing or of the wrong type) raises a `RecordError` naming it.
`collect` never drops such a file silently: it names it in a one-line warning and counts it as
a failed run (where the sweep's cell.json says which cell it was), so figures and tables show
a failed cell instead of a hole that looks like a run that never happened.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..finished import record as run_record
from ..errors import UserError
from ..finished.record import FAILURE_FILENAME, RESULT_FILENAME, RecordError, RunResult, describe_type, json_kind, json_short
from ..sweep.state import REPLACED_DIR

CELL_FILENAME = "cell.json"

# split -> task -> metric -> value (percent)
Metrics = Mapping[str, Mapping[str, Mapping[str, float]]]


@dataclass(frozen=True)
class Record:
    path: Path                      # the run's output folder
    model: str
    method: str
    variant: str                    # method or a named variant (e.g. attempt-no_target)
    tasks: tuple[str, ...]
    seed: int | None
    status: str                     # completed | oom | failed
    metrics: Metrics = field(default_factory=dict)   # empty unless completed
    trainable_per_task: float | None = None
    ablation: str | None = None
    no_prior: bool = False
    spot_mode: str | None = None    # SPoT: generic (SPoT-g) | targeted (SPoT-t)
    options: Mapping[str, Any] = field(default_factory=dict)
    """The run's options of its method by flag name (prompt_length, bottleneck, ...): what sizes
    its trainable parameters (Figure 4a counts them at these)."""
    speed: dict | None = None       # completed runs: steady-state tokens/s, examples/s, MFU (RunResult.speed)

    @property
    def multitask(self) -> bool:
        return len(self.tasks) > 1

    def score(self, task: str, split: str = "test") -> float | None:
        """The task's headline number (the metric the paper reports for it, in percent) on
        `split`, falling back to dev when the record has no such split."""
        by_split = self.metrics.get(split) or self.metrics.get("dev") or {}
        values = by_split.get(task)
        if not values:
            return None
        from ..tasks import headline_or_mean

        return headline_or_mean(task, values)


def collect(run_dir: str | Path, *, warn=None) -> list[Record]:
    """Every run record under `run_dir`. One that cannot be read is named by `warn` (default: a
    line on stderr) and comes back as a failed run when its cell.json says which run it was."""
    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; pass a sweep's RUN_DIR or a folder of training runs")
    out = []
    for path in sorted(run_dir.rglob(RESULT_FILENAME)) + sorted(run_dir.rglob(FAILURE_FILENAME)):
        if path.name == FAILURE_FILENAME and (path.parent / RESULT_FILENAME).exists():
            continue
        if path.relative_to(run_dir).parts[0] in ("library", REPLACED_DIR):
            continue  # library stages are inputs, not results; replaced cells are another configuration's
        if any(part.startswith(".") for part in path.relative_to(run_dir).parts[:-1]):
            continue  # a run --overwrite set aside (training/overwrite.py), not a result of its own
        try:
            out.append(read_grid_record(path))
        except RecordError as err:
            failed = _unreadable_as_failed(path)
            warn(f"warning: {err}; " + ("counted as a failed run" if failed else "left out (no cell.json names its run)"))
            if failed is not None:
                out.append(failed)
    return out


def _unreadable_as_failed(path: Path) -> Record | None:
    """A record that cannot be read, as a failed run of the cell its sweep's cell.json names."""
    cell_path = path.parent.parent / CELL_FILENAME
    if not cell_path.exists():
        return None
    try:
        cell = run_record.read_object(cell_path)
        tasks = _get(cell_path, cell, "tasks", (list, str))
        tasks = tuple(t for t in tasks.split(",") if t) if isinstance(tasks, str) else tuple(tasks)
        method = _get(cell_path, cell, "method", str)
        return Record(path=path.parent, model=_get(cell_path, cell, "model", str), method=method,
                      variant=_get(cell_path, cell, "variant", str, required=False) or method, tasks=tasks,
                      seed=_get(cell_path, cell, "seed", int, required=False), status="failed")
    except RecordError:
        return None


def read_grid_record(path: str | Path) -> Record:
    """One result.json (completed run) or failure.json (oom / failed) as a plotting Record: the
    typed run record (record.read_record) placed in the grid (model, method, tasks, options)."""
    path = Path(path)
    run = run_record.read_record(path)
    config = run.config
    metrics: Metrics = run.metrics if isinstance(run, RunResult) else {}
    per_task = run.params.trainable_per_task if isinstance(run, RunResult) and run.params else None

    # Grid coordinates: the sweep's cell.json first, the run's own config second.
    cell_path = path.parent.parent / CELL_FILENAME
    cell = run_record.read_object(cell_path) if cell_path.exists() else {}
    train = _get(cell_path, cell, "train", dict, required=False) or {}

    def coordinate(key: str, types, *, sources=((cell_path, cell, ""), (path, config, "config.")),
                   required: bool = True):
        for source, obj, where in sources:
            value = _get(source, obj, key, types, required=False, where=where)
            if value is not None:
                return value
        if required:
            raise RecordError(f"{path}: no {key!r} in its config" + (f" nor in {cell_path}" if cell else ""))
        return None

    model = coordinate("model", str)
    method = coordinate("method", str)
    tasks = coordinate("tasks", (list, str))
    tasks = tuple(t for t in tasks.split(",") if t) if isinstance(tasks, str) else tuple(tasks)
    if not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise RecordError(f"{path}: 'tasks' must be a non-empty list of task names, got {list(tasks)!r}")
    seed = coordinate("seed", int, required=False)
    variant = _get(cell_path, cell, "variant", str, required=False) or method
    option_sources = ((cell_path, train, "train."), (path, config, "config."))
    ablation = coordinate("ablation", str, sources=option_sources, required=False)
    no_prior = coordinate("no_prior", bool, sources=option_sources, required=False) or False
    spot_mode = coordinate("spot_mode", str, sources=option_sources, required=False)
    options = _method_options(path, method, option_sources)
    return Record(
        path=path.parent, model=model, method=method, variant=variant, tasks=tasks, seed=seed,
        status=run.status, metrics=metrics, trainable_per_task=per_task,
        ablation=ablation if ablation not in ("", "none") else None, no_prior=no_prior,
        spot_mode=spot_mode, options=options,
        speed=run.speed() if isinstance(run, RunResult) else None,
    )


def _method_options(path: Path, method: str, sources) -> dict[str, Any]:
    """The options of `method` among the sources' keys, by their current flag names (an older
    record's `rank` is `bottleneck`); the first source that gives one wins."""
    from ..methods.options import cli_options, with_current_names

    table, found = cli_options(), {}
    for source, obj, _ in reversed(sources):
        try:
            current = with_current_names(obj)
        except UserError as err:
            raise RecordError(f"{source}: {err}") from None
        found.update({dest: value for dest, value in current.items()
                      if value is not None and dest in table and method in table[dest].fields})
    return found


def _get(path: Path, obj: dict, key: str, types, *, required: bool = True, where: str = "") -> Any:
    """obj[key] checked against `types` (bool is not a number here); None when absent and optional."""
    types = types if isinstance(types, tuple) else (types,)
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(f"{path}: required field {where + key!r} is missing")
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        expected = " or ".join(describe_type(t) for t in types)
        raise RecordError(f"{path}: field {where + key!r} should be {expected}, got {json_kind(value)} {json_short(value)}")
    return value


def model_order(models) -> list[str]:
    """Backbones smallest first (by their architecture), unknown names last, alphabetically."""
    from ..model.backbones import BACKBONES

    def size(name: str):
        spec = BACKBONES.get(name)
        if spec is None:
            return (1, 0, name)
        layers = spec.num_layers + (spec.num_decoder_layers or spec.num_layers)
        return (0, layers * spec.d_model * (spec.d_ff + 4 * spec.num_heads * spec.d_kv) + spec.vocab_size * spec.d_model, name)

    return sorted(set(models), key=size)
