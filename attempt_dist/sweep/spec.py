"""A sweep file's content, checked and expanded into cells and libraries.

A sweep file (YAML; its format is schema.py) names one or more grids (models x methods x tasks
x seeds), the training options every cell gets, rules that override options for some cells
(the paper's batch size per backbone, method and task), the source-prompt/prior libraries
that SPoT and ATTEMPT cells need, and the executor. Expanding it checks every key (schema.py);
read.py then runs every cell's options through the trainer's own parser (check.py), so a sweep
that reads is one the trainer accepts, cell by cell.

A library is sized in epochs per source task (`epochs`, default 5 as in B.3; `max_steps`
instead for smoke runs). Its job builds what its cells read: the source prompts; for ATTEMPT
cells the B.1 prior each needs (the QA prior for QA targets, the GLUE one otherwise); for
SPoT-g cells (spot, spot_mode generic, no spot_source) the prompt trained on the GLUE source
mixture; for SPoT-t cells (spot_mode targeted) a probe prompt per target task.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
# Membership, not needs(): a sweep with its own trainer may name methods of its own.
from ..methods import LIBRARY_METHODS, PRIOR_METHODS, method_hook
from ..methods.options import cli_options
from ..library.sources import SOURCE_EPOCHS, buildable_priors, prior_for
from ..training.config import options_not_for_libraries, path_options
from .executor import EXECUTOR_KINDS, ExecutorSpec, executor_json, mem_gb, parse_minutes
from .schema import (DEFAULT_PIPELINE, DEFAULT_SEEDS, DEFAULT_TRAINER, Grid, LibrarySpec, Rule, SweepFile, When,
                     usable_name, validate)

__all__ = ["Cell", "DEFAULT_PIPELINE", "DEFAULT_SEEDS", "DEFAULT_TRAINER", "EXECUTOR_KINDS", "ExecutorSpec",
           "Library", "Sweep", "TRAIN_OPTIONS", "expand_sweep", "mem_gb", "options_to_argv", "parse_minutes",
           "train_argv"]

# Flags of attempt_dist.train.main a sweep may set; model/method/tasks/seed come from the grid
# and output_dir/resume/overwrite are managed by the sweep itself.
MANAGED_OPTIONS = {"model", "method", "tasks", "seed", "output_dir", "resume", "overwrite"}


def _train_options() -> set[str]:
    # Every field of the trainer's config and every method option is a sweep option, so the
    # sweep keys never drift from the trainer's flags.
    import dataclasses

    from ..training.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
    return fields - MANAGED_OPTIONS | set(cli_options()) | {"extra_args"}


TRAIN_OPTIONS = _train_options()
PATH_OPTIONS = path_options()


@dataclass(frozen=True)
class Library:
    name: str
    model: str
    sources: tuple[str, ...]
    max_steps: int | None
    train: dict
    needs_prior: bool
    targets: tuple[str, ...]
    epochs: float | None = None
    """Epochs of each source prompt, prior and SPoT-g run (None with max_steps)."""
    priors: tuple[str, ...] = ()
    """The B.1 priors its ATTEMPT cells read (source_library.PRIOR_GROUPS names)."""
    spot_g: bool = False
    """A SPoT-g cell reads it: train the prompt on the GLUE source mixture."""
    probes: tuple[str, ...] = ()
    """Target tasks of its SPoT-t cells: one probe prompt each."""
    folder: str | None = None
    """Shared with other sweeps: this folder, relative to the run folder (None: RUN/library/<key>)."""

    @property
    def key(self) -> str:
        return f"{self.name}__{self.model}"

    @property
    def stages(self) -> str:
        """The pipeline's --stages for this library: only what its cells read."""
        return ",".join(["sources"] + ["prior"] * self.needs_prior + ["spot_g"] * self.spot_g
                        + ["probes"] * bool(self.probes))


@dataclass
class Cell:
    model: str
    variant: str          # display/method-variant name, e.g. "attempt-no_target"
    method: str           # the trainer's --method
    tasks: tuple[str, ...]
    task_label: str       # "boolq", "boolq+cb" or a group name
    seed: int
    train: dict = field(default_factory=dict)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    library: str | None = None   # Library.key this cell waits for, if any

    @property
    def name(self) -> str:
        return f"{self.model}__{self.variant}__{self.task_label}__s{self.seed}"

    @property
    def multitask(self) -> bool:
        return len(self.tasks) > 1

    def to_json(self) -> dict:
        return {
            "name": self.name, "model": self.model, "variant": self.variant, "method": self.method,
            "tasks": list(self.tasks), "task_label": self.task_label, "seed": self.seed,
            "train": self.train, "executor": executor_json(self.executor), "library": self.library,
        }


@dataclass
class Sweep:
    name: str
    source: Path | None
    trainer: str
    pipeline: str
    cells: list[Cell]
    libraries: dict[str, Library]
    executor: ExecutorSpec

    def cell(self, name: str) -> Cell:
        for cell in self.cells:
            if cell.name == name:
                return cell
        raise KeyError(name)


def expand_sweep(raw: Any, *, source: Path | None = None, executor_kind: str | None = None,
                 data_dir: str | None = None, executor_settings: dict | None = None) -> Sweep:
    """The sweep file's content (`raw`, as YAML gives it) checked key by key and expanded into
    cells; `executor_kind` and `data_dir` override the file's values, `executor_settings` (the
    cluster's partition, account, time, ...) its executor block (an `overrides` rule still
    wins for its cells)."""
    where = str(source) if source else "sweep"
    base = source.parent.resolve() if source else Path.cwd()
    parsed: SweepFile = validate(SweepFile, raw, where, context={
        "base": base, "options": TRAIN_OPTIONS, "managed": MANAGED_OPTIONS, "paths": PATH_OPTIONS})
    name = parsed.name or (source.stem if source else "sweep")
    try:
        usable_name(name)
    except ValueError as err:
        raise UserError(f"{where}: name (the file's stem): {err}") from None

    global_train = dict(parsed.train)
    if data_dir is not None:
        global_train["data_dir"] = str(Path(data_dir).resolve())
    executor = parsed.executor
    if executor_settings:
        executor = _executor_with(executor, dict(executor_settings), "command line", ("executor",))
    if executor_kind is not None:
        executor = _executor_with(executor, {"kind": executor_kind}, where, ("executor",))
    for i, rule in enumerate(parsed.overrides):  # each rule's executor, refused where it is written
        _executor_with(executor, rule.executor, where, ("overrides", i, "executor"))

    cells: list[Cell] = []
    for i, block in enumerate(parsed.grid):
        cells.extend(_expand(block, f"{where}: grid[{i}]", global_train, executor, parsed.overrides,
                             parsed.libraries))
    seen: set[str] = set()
    for cell in cells:
        if cell.name in seen:
            raise UserError(f"{where}: cell {cell.name} appears twice; give method variants distinct names")
        seen.add(cell.name)

    libraries = _libraries(cells, parsed.libraries, global_train)
    return Sweep(name, source, parsed.trainer, parsed.pipeline, cells, libraries, executor)


def _executor_with(base: ExecutorSpec, changes: dict, where: str, at: tuple) -> ExecutorSpec:
    return validate(ExecutorSpec, {**executor_json(base), **changes}, where, at=at) if changes else base


# --- expansion -------------------------------------------------------------------------------

def _expand(block: Grid, where: str, global_train: dict, executor: ExecutorSpec, rules: list[Rule],
            library_specs: dict[str, LibrarySpec]) -> list[Cell]:
    cells = []
    for model, method, group, seed in itertools.product(block.models, block.methods, block.tasks, block.seeds):
        cell = Cell(model, method.variant, method.trainer_method, tuple(group.tasks), group.label, seed)
        train = {**global_train, **block.train, **method.train}
        executor_changes: dict = {}
        set_by: dict[str, int] = {}  # option -> index of the rule that set it
        for i, rule in enumerate(rules):
            if _matches(rule.when, cell):
                _refuse_conflict(rule, i, set_by, train, cell, where)
                train.update(rule.train)
                executor_changes.update(rule.executor)
        cell.train = {k: v for k, v in train.items() if v is not None}
        cell.executor = _executor_with(executor, executor_changes, where, ("overrides",))
        if cell.method in LIBRARY_METHODS and "source_prompts" not in cell.train:
            lib_name = block.library or next(iter(library_specs), None)
            if lib_name is None:
                raise UserError(
                    f"{where}: {cell.method} cells need source prompts; add libraries: {{name: {{sources: [...]}}}} "
                    f"or set train.source_prompts")
            cell.library = f"{lib_name}__{model}"
        cells.append(cell)
    return cells


def _refuse_conflict(rule: Rule, index: int, set_by: dict[str, int], train: dict, cell: Cell, where: str) -> None:
    """Two rules that both match a cell may not give one option different values: a later rule
    silently winning hid a wrong gate lr in the ablation sweep (issue 19). Rules override the
    grid's options; among themselves they must agree or not overlap."""
    for key, value in rule.train.items():
        if key in set_by and train.get(key) != value:
            raise UserError(
                f"{where.split(': ')[0]}: overrides[{set_by[key]}] and overrides[{index}] both match cell "
                f"{cell.name} and set {key} to {train.get(key)!r} and {value!r}; narrow their `when` so that "
                f"one rule decides it")
        set_by[key] = index


# A library inherits the sweep's global training options (data, lengths, prompt length, gate
# rank, DeepSpeed config: its prompts and prior must fit the cells that read them) except
# those that describe one target cell or the library's own schedule. A method option says so
# on its own field (option(..., for_libraries=False)).
NOT_FOR_LIBRARIES = (options_not_for_libraries() | {"extra_args"}
                     | {dest for dest, opt in cli_options().items() if not opt.for_libraries})


def cell_prior(cell: Cell, sources: tuple[str, ...] | None) -> str | None:
    """The B.1 prior an ATTEMPT cell starts from (None: it takes none), given its library's sources."""
    if cell.method not in PRIOR_METHODS or cell.train.get("no_prior"):
        return None
    return prior_for(cell.tasks, None if sources is None else buildable_priors(list(sources)))


def spot_input(cell: Cell) -> str | None:
    """What a cell's library job builds for it besides the source prompts, as its method says
    (library_stage): "spot_g" (SPoT-g's mixture prompt), "probes" (SPoT-t, and ATTEMPT's
    single_prompt ablation keeping the source SPoT-t selects), or None."""
    stage = method_hook(cell.method, "library_stage")
    return stage(cell.train) if stage else None


def _libraries(cells: list[Cell], specs: dict[str, LibrarySpec], global_train: dict) -> dict[str, Library]:
    out: dict[str, Library] = {}
    for cell in cells:
        if cell.library is not None and cell.library not in out:  # what the spec asks besides its cells
            out[cell.library] = _declared_library(cell.library, specs)
        if cell.library is None:
            continue
        lib_name, model = cell.library.split("__", 1)
        spec = specs[lib_name]
        sources = tuple(spec.sources)
        prior = cell_prior(cell, sources)
        spot = spot_input(cell)
        old = out.get(cell.library)
        targets = tuple(dict.fromkeys((old.targets if old else ()) + cell.tasks))
        out[cell.library] = Library(
            name=lib_name, model=model, sources=sources, max_steps=spec.max_steps,
            train={**{k: v for k, v in global_train.items() if k not in NOT_FOR_LIBRARIES}, **spec.train},
            needs_prior=prior is not None or bool(old and old.needs_prior), targets=targets,
            # B.3: 5 epochs per source task; max_steps (a smoke run) replaces it.
            epochs=None if spec.max_steps is not None else float(spec.epochs or SOURCE_EPOCHS),
            priors=tuple(p for p in buildable_priors(list(sources)) if p == prior or (old and p in old.priors)),
            spot_g=spot == "spot_g" or bool(old and old.spot_g),
            probes=tuple(dict.fromkeys((old.probes if old else ()) + (cell.tasks if spot == "probes" else ()))),
            folder=spec.folder,
        )
    return out


def _declared_library(key: str, specs: dict[str, LibrarySpec]) -> Library:
    """A library as its spec declares it, before its cells add what they read: a library shared
    by several sweeps declares everything any of them reads, so each sweep builds the same one."""
    lib_name, model = key.split("__", 1)
    spec = specs[lib_name]
    sources = tuple(spec.sources)
    buildable = buildable_priors(list(sources))
    unknown = [p for p in spec.priors if p not in buildable]
    if unknown:
        raise UserError(f"libraries.{lib_name}.priors: {', '.join(unknown)} cannot be built from "
                        f"{', '.join(sources)}; buildable: {', '.join(buildable) or 'none'}")
    return Library(name=lib_name, model=model, sources=sources, max_steps=spec.max_steps, train={}, needs_prior=bool(spec.priors),
                   targets=(), priors=tuple(p for p in buildable if p in spec.priors), spot_g=spec.spot_g,
                   probes=tuple(spec.probes), folder=spec.folder)


def _matches(when: When, cell: Cell) -> bool:
    if when.multitask is not None and when.multitask != cell.multitask:
        return False
    values = {"model": {cell.model}, "method": {cell.method}, "variant": {cell.variant},
              "task": set(cell.tasks) | {cell.task_label}}
    return all(getattr(when, key) is None or values[key] & set(getattr(when, key)) for key in values)


def train_argv(cell: Cell, output_dir: Path, extra: dict | None = None) -> list[str]:
    """The trainer's argv for one cell (without --resume/--overwrite, which the job adds)."""
    options = {"model": cell.model, "method": cell.method, "tasks": list(cell.tasks),
               "seed": cell.seed, **cell.train, **(extra or {}), "output_dir": str(output_dir)}
    return options_to_argv(options)


def options_to_argv(options: dict) -> list[str]:
    argv: list[str] = []
    for key, value in options.items():
        if key == "extra_args" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv + list(options.get("extra_args") or [])
