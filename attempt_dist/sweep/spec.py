"""Sweep files: parse, validate strictly, and expand into cells.

A sweep file (YAML) names one or more grids (models x methods x tasks x seeds), the training
options every cell gets, rules that override options for some cells (the paper's batch size
per backbone, method and task), the source-prompt/prior libraries that SPoT and ATTEMPT cells
need, and the executor. Schema (every key optional unless marked):

    name: scaling                          # run folder name (default: file stem)
    trainer: attempt_dist.train:main       # "module:function" taking argv, returning int
    pipeline: attempt_dist.pipeline:main   # builds libraries (source prompts, prior)
    train: {max_length: 216, data_dir: data}          # options for every cell
    grid:                                  # required; a mapping or a list of mappings
      models: [t5-small, t5-base]          # required
      methods: [prompt, {name: attempt-no_target, method: attempt, train: {ablation: no_target}}]
      tasks: [boolq, [boolq, cb], {name: superglue, tasks: [boolq, cb]}]  # str = single task
      seeds: [42]                          # default [42]
      train: {...}                         # options for this block's cells
      library: glue                        # which library SPoT/ATTEMPT cells use
    overrides:                             # applied in order; later rules win
      - when: {model: t5-3b, method: [prompt, attempt], task: boolq}
        train: {batch_size: 2}
        executor: {time: 600}
    libraries:
      glue: {sources: [mnli, sst2, qqp, qnli], max_steps: 1000, train: {...}}
    executor: {kind: slurm, partition: gpu, gpus_per_node: 1, nodes: 1, time: 240, mem: 64G,
               cpus_per_task: 8, array_parallelism: 16, account: null, qos: null}

Training option names are the trainer's flags with underscores (batch_size -> --batch-size);
true adds a bare flag (no_prior: true -> --no-prior), false/null leaves it out, lists are
comma-joined. `extra_args: [...]` passes raw arguments through. Relative paths in data_dir,
ds_config (when it names a file), source_prompts and prior are resolved against the sweep
file's folder.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
# Membership, not needs(): a sweep with its own trainer may name methods of its own.
from ..methods import LIBRARY_METHODS, PRIOR_METHODS

DEFAULT_TRAINER = "attempt_dist.train:main"
DEFAULT_PIPELINE = "attempt_dist.pipeline:main"
DEFAULT_SEEDS = [42]

TOP_KEYS = {"name", "trainer", "pipeline", "train", "grid", "overrides", "libraries", "executor"}
GRID_KEYS = {"models", "methods", "tasks", "seeds", "train", "library"}
METHOD_KEYS = {"name", "method", "train"}
TASK_GROUP_KEYS = {"name", "tasks"}
RULE_KEYS = {"when", "train", "executor"}
WHEN_KEYS = {"model", "method", "variant", "task", "multitask"}
LIBRARY_KEYS = {"sources", "max_steps", "train"}
EXECUTOR_KEYS = {
    "kind", "partition", "gpus_per_node", "tasks_per_node", "nodes", "time", "mem",
    "cpus_per_task", "array_parallelism", "account", "qos", "constraint", "setup", "additional",
}
EXECUTOR_KINDS = ("slurm", "local", "debug")
# Flags of attempt_dist.train.main a sweep may set; model/method/tasks/seed come from the grid
# and output_dir/resume/overwrite are managed by the sweep itself.
MANAGED_OPTIONS = {"model", "method", "tasks", "seed", "output_dir", "resume", "overwrite"}


def _train_options() -> set[str]:
    # Every field of the trainer's config is a sweep option, so the two never drift apart.
    import dataclasses

    from ..train_config import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)} - MANAGED_OPTIONS | {"extra_args"}


TRAIN_OPTIONS = _train_options()
PATH_OPTIONS = {"data_dir", "source_prompts", "prior"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str = "local"
    partition: str | None = None
    gpus_per_node: int = 0
    tasks_per_node: int | None = None
    nodes: int = 1
    time: int = 60  # minutes
    mem: str | None = None
    cpus_per_task: int | None = None
    array_parallelism: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    additional: tuple[tuple[str, Any], ...] = ()

    @property
    def ntasks_per_node(self) -> int:
        # One rank per GPU; CPU-only jobs run one rank unless told otherwise.
        return self.tasks_per_node or max(self.gpus_per_node, 1)

    @property
    def world_size(self) -> int:
        return self.ntasks_per_node * self.nodes

    def summary(self) -> str:
        parts = [self.kind]
        if self.partition:
            parts.append(f"partition={self.partition}")
        parts.append(f"nodes={self.nodes}x{self.ntasks_per_node} tasks")
        if self.gpus_per_node:
            parts.append(f"gpus/node={self.gpus_per_node}")
        parts.append(f"time={self.time}m")
        if self.mem:
            parts.append(f"mem={self.mem}")
        if self.cpus_per_task:
            parts.append(f"cpus/task={self.cpus_per_task}")
        return " ".join(parts)


@dataclass(frozen=True)
class Library:
    name: str
    model: str
    sources: tuple[str, ...]
    max_steps: int | None
    train: dict
    needs_prior: bool
    targets: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.name}__{self.model}"


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
            "train": self.train, "executor": _executor_json(self.executor), "library": self.library,
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


def load_sweep(path: str | Path, *, executor_kind: str | None = None,
               data_dir: str | None = None) -> Sweep:
    """Read a sweep file; `executor_kind` and `data_dir` override the file's values."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sweep file {path} does not exist; pass a YAML sweep file (see launch/sweeps/)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        # The line and column where the parser gave up (1-based, as editors count them).
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}: not valid YAML: {problem}; fix that line and run again") from None
    return parse_sweep(raw, source=path, executor_kind=executor_kind, data_dir=data_dir)


def parse_sweep(raw: Any, *, source: Path | None = None, executor_kind: str | None = None,
                data_dir: str | None = None) -> Sweep:
    where = str(source) if source else "sweep"
    raw = _mapping(raw, where)
    _check_keys(raw, TOP_KEYS, where)
    base = source.parent.resolve() if source else Path.cwd()
    name = str(raw.get("name") or (source.stem if source else "sweep"))
    _check_name(name, f"{where}: name")

    global_train = _train_options(raw.get("train"), f"{where}: train", base)
    if data_dir is not None:
        global_train["data_dir"] = str(Path(data_dir).resolve())

    executor_raw = dict(_mapping(raw.get("executor") or {}, f"{where}: executor"))
    if executor_kind is not None:
        executor_raw["kind"] = executor_kind
    executor = _executor(executor_raw, f"{where}: executor")

    rules = raw.get("overrides") or []
    if not isinstance(rules, list):
        raise UserError(f"{where}: overrides must be a list of {{when, train, executor}} rules")
    rules = [_rule(rule, f"{where}: overrides[{i}]", base) for i, rule in enumerate(rules)]

    libraries_raw = _mapping(raw.get("libraries") or {}, f"{where}: libraries")
    library_defs = {}
    for lib_name, lib in libraries_raw.items():
        lwhere = f"{where}: libraries.{lib_name}"
        _check_name(str(lib_name), lwhere)
        lib = _mapping(lib, lwhere)
        _check_keys(lib, LIBRARY_KEYS, lwhere)
        sources = _str_list(lib.get("sources"), f"{lwhere}.sources")
        if not sources:
            raise UserError(f"{lwhere}.sources is empty; name the source tasks, e.g. [mnli, sst2, qqp, qnli]")
        library_defs[str(lib_name)] = {
            "sources": tuple(sources),
            "max_steps": lib.get("max_steps"),
            "train": _train_options(lib.get("train"), f"{lwhere}.train", base),
        }

    grids = raw.get("grid")
    if grids is None:
        raise UserError(f"{where}: no grid; add grid: {{models: [...], methods: [...], tasks: [...]}}")
    if isinstance(grids, dict):
        grids = [grids]
    if not isinstance(grids, list) or not grids:
        raise UserError(f"{where}: grid is empty; give at least one block of models, methods and tasks")

    cells: list[Cell] = []
    for i, grid in enumerate(grids):
        cells.extend(_expand(grid, f"{where}: grid[{i}]", base, global_train, executor, rules,
                             library_defs))
    if not cells:
        raise UserError(f"{where}: the grid expands to no cells; list at least one model, method, task and seed")

    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.name in seen:
            raise UserError(f"{where}: cell {cell.name} appears twice; give method variants distinct names")
        seen[cell.name] = cell

    libraries = _libraries(cells, library_defs, global_train)
    trainer = str(raw.get("trainer") or DEFAULT_TRAINER)
    pipeline = str(raw.get("pipeline") or DEFAULT_PIPELINE)
    for key, value in (("trainer", trainer), ("pipeline", pipeline)):
        if ":" not in value:
            raise UserError(f"{where}: {key} must be 'module:function', got {value!r}")
    sweep = Sweep(name, source, trainer, pipeline, cells, libraries, executor)
    from .check import check_cell_options  # the trainer's own parser, on every cell

    check_cell_options(sweep)
    return sweep


# --- expansion -------------------------------------------------------------------------------

def _expand(grid, where, base, global_train, executor, rules, library_defs) -> list[Cell]:
    grid = _mapping(grid, where)
    _check_keys(grid, GRID_KEYS, where)
    for axis in ("models", "methods", "tasks"):
        if axis not in grid:
            raise UserError(f"{where}: missing {axis}; a grid needs models, methods and tasks")
    models = _str_list(grid["models"], f"{where}.models")
    methods = [_method(m, f"{where}.methods[{j}]", base) for j, m in enumerate(_list(grid["methods"], f"{where}.methods"))]
    tasks = [_tasks(t, f"{where}.tasks[{j}]") for j, t in enumerate(_list(grid["tasks"], f"{where}.tasks"))]
    seeds = grid.get("seeds", DEFAULT_SEEDS)
    seeds = _list(seeds, f"{where}.seeds")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise UserError(f"{where}.seeds: {seed!r} is not an integer")
    for model in models:
        _check_name(model, f"{where}.models")
    if not (models and methods and tasks and seeds):
        empty = [a for a, v in (("models", models), ("methods", methods), ("tasks", tasks), ("seeds", seeds)) if not v]
        raise UserError(f"{where}: empty grid ({', '.join(empty)} empty); list at least one of each")
    block_train = _train_options(grid.get("train"), f"{where}.train", base)
    library = grid.get("library")
    if library is not None and str(library) not in library_defs:
        raise UserError(f"{where}.library: unknown library {library!r}; defined: {sorted(library_defs) or 'none'}")

    cells = []
    for model, (variant, method, method_train), (task_label, task_list), seed in itertools.product(models, methods, tasks, seeds):
        train = {**global_train, **block_train, **method_train}
        cell_executor = executor
        cell = Cell(model, variant, method, task_list, task_label, seed)
        for when, rule_train, rule_exec in rules:
            if _matches(when, cell):
                train.update(rule_train)
                if rule_exec:
                    cell_executor = _executor({**_executor_json(cell_executor), **rule_exec},
                                              f"{where}: override executor")
        cell.train = {k: v for k, v in train.items() if v is not None}
        cell.executor = cell_executor
        if method in LIBRARY_METHODS and "source_prompts" not in cell.train:
            lib_name = str(library) if library is not None else (next(iter(library_defs), None))
            if lib_name is None:
                raise UserError(
                    f"{where}: {method} cells need source prompts; add libraries: {{name: {{sources: [...]}}}} "
                    f"or set train.source_prompts")
            cell.library = f"{lib_name}__{model}"
        cells.append(cell)
    return cells


# A library inherits the sweep's global training options (data, lengths, prompt length, gate
# rank, DeepSpeed config: its prompts and prior must fit the cells that read them) except
# those that describe one target cell or the library's own schedule.
NOT_FOR_LIBRARIES = {"source_prompts", "prior", "ablation", "no_prior", "single_source", "lr", "gate_lr",
                     "extra_args", "max_steps", "epochs", "target_init", "spot_mode", "spot_source",
                     "spot_top_k", "spot_probe"}


def _libraries(cells: list[Cell], defs: dict, global_train: dict) -> dict[str, Library]:
    out: dict[str, Library] = {}
    for cell in cells:
        if cell.library is None:
            continue
        lib_name, model = cell.library.split("__", 1)
        spec = defs[lib_name]
        prior = cell.method in PRIOR_METHODS and not cell.train.get("no_prior")
        old = out.get(cell.library)
        targets = tuple(dict.fromkeys((old.targets if old else ()) + cell.tasks))
        out[cell.library] = Library(
            name=lib_name, model=model, sources=spec["sources"], max_steps=spec["max_steps"],
            train={**{k: v for k, v in global_train.items() if k not in NOT_FOR_LIBRARIES}, **spec["train"]},
            needs_prior=prior or bool(old and old.needs_prior), targets=targets,
        )
    return out


def _matches(when: dict, cell: Cell) -> bool:
    values = {"model": {cell.model}, "method": {cell.method}, "variant": {cell.variant},
              "task": set(cell.tasks) | {cell.task_label}}
    for key, wanted in when.items():
        if key == "multitask":
            if bool(wanted) != cell.multitask:
                return False
        elif not (values[key] & set(wanted)):
            return False
    return True


# --- pieces ----------------------------------------------------------------------------------

def _method(entry, where, base) -> tuple[str, str, dict]:
    if isinstance(entry, str):
        _check_name(entry, where)
        return entry, entry, {}
    entry = _mapping(entry, where)
    _check_keys(entry, METHOD_KEYS, where)
    if "method" not in entry and "name" not in entry:
        raise UserError(f"{where}: a method variant needs name and method")
    method = str(entry.get("method") or entry["name"])
    name = str(entry.get("name") or method)
    _check_name(name, where)
    return name, method, _train_options(entry.get("train"), f"{where}.train", base)


def _tasks(entry, where) -> tuple[str, tuple[str, ...]]:
    if isinstance(entry, str):
        _check_name(entry, where)
        return entry, (entry,)
    if isinstance(entry, list):
        tasks = _str_list(entry, where)
        if not tasks:
            raise UserError(f"{where}: empty task list")
        return "+".join(tasks), tuple(tasks)
    entry = _mapping(entry, where)
    _check_keys(entry, TASK_GROUP_KEYS, where)
    tasks = _str_list(entry.get("tasks"), f"{where}.tasks")
    if not tasks:
        raise UserError(f"{where}: task group has no tasks")
    name = str(entry.get("name") or "+".join(tasks))
    _check_name(name, where)
    return name, tuple(tasks)


def _rule(rule, where, base):
    rule = _mapping(rule, where)
    _check_keys(rule, RULE_KEYS, where)
    when = _mapping(rule.get("when") or {}, f"{where}.when")
    _check_keys(when, WHEN_KEYS, f"{where}.when")
    norm = {}
    for key, value in when.items():
        norm[key] = value if key == "multitask" else set(_str_list(value if isinstance(value, list) else [value], f"{where}.when.{key}"))
    execu = _mapping(rule.get("executor") or {}, f"{where}.executor")
    _check_keys(execu, EXECUTOR_KEYS - {"kind"}, f"{where}.executor")
    return norm, _train_options(rule.get("train"), f"{where}.train", base), dict(execu)


def _train_options(raw, where, base: Path) -> dict:
    raw = _mapping(raw or {}, where)
    bad = sorted(set(raw) & MANAGED_OPTIONS)
    if bad:
        raise UserError(f"{where}: {', '.join(bad)} cannot be set here; the grid and the sweep set them")
    _check_keys(raw, TRAIN_OPTIONS, where)
    out = dict(raw)
    for key in PATH_OPTIONS:
        if isinstance(out.get(key), str):
            out[key] = str((base / out[key]).resolve())
    ds = out.get("ds_config")
    if isinstance(ds, str) and (ds.endswith(".json") or "/" in ds):
        out["ds_config"] = str((base / ds).resolve())
    if "extra_args" in out:
        out["extra_args"] = [str(a) for a in _list(out["extra_args"], f"{where}.extra_args")]
    return out


def _executor(raw: dict, where: str) -> ExecutorSpec:
    _check_keys(raw, EXECUTOR_KEYS, where)
    kind = raw.get("kind", "local")
    if kind not in EXECUTOR_KINDS:
        raise UserError(f"{where}.kind: {kind!r} is not one of {', '.join(EXECUTOR_KINDS)}")
    ints = {}
    for key in ("gpus_per_node", "tasks_per_node", "nodes", "cpus_per_task", "array_parallelism"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise UserError(f"{where}.{key}: {value!r} is not a non-negative integer")
        ints[key] = value
    if ints["nodes"] == 0 or ints["tasks_per_node"] == 0 or ints["array_parallelism"] == 0:
        raise UserError(f"{where}: nodes, tasks_per_node and array_parallelism must be at least 1")
    if kind != "slurm" and (ints["nodes"] or 1) > 1:
        raise UserError(f"{where}: nodes > 1 needs the slurm executor; {kind} runs on one machine")
    setup = raw.get("setup") or []
    additional = _mapping(raw.get("additional") or {}, f"{where}.additional")
    mem = raw.get("mem")
    return ExecutorSpec(
        kind=kind, partition=_opt_str(raw.get("partition")), gpus_per_node=ints["gpus_per_node"] or 0,
        tasks_per_node=ints["tasks_per_node"], nodes=ints["nodes"] or 1,
        time=parse_minutes(raw.get("time", 60), f"{where}.time"),
        mem=None if mem is None else str(mem), cpus_per_task=ints["cpus_per_task"],
        array_parallelism=ints["array_parallelism"], account=_opt_str(raw.get("account")),
        qos=_opt_str(raw.get("qos")), constraint=_opt_str(raw.get("constraint")),
        setup=tuple(str(s) for s in _list(setup, f"{where}.setup")),
        additional=tuple(sorted(additional.items())),
    )


def _executor_json(spec: ExecutorSpec) -> dict:
    return {
        "kind": spec.kind, "partition": spec.partition, "gpus_per_node": spec.gpus_per_node,
        "tasks_per_node": spec.tasks_per_node, "nodes": spec.nodes, "time": spec.time, "mem": spec.mem,
        "cpus_per_task": spec.cpus_per_task, "array_parallelism": spec.array_parallelism,
        "account": spec.account, "qos": spec.qos, "constraint": spec.constraint,
        "setup": list(spec.setup), "additional": dict(spec.additional),
    }


def parse_minutes(value: Any, where: str) -> int:
    """Minutes from an int or SLURM-style "MM", "HH:MM:SS" or "D-HH:MM:SS"."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
        if match:
            days, a, b, c = match.groups()
            if b is None:
                minutes = int(a)
            elif c is None:
                minutes = int(a) * 60 + int(b)
            else:
                minutes = int(a) * 60 + int(b) + (1 if int(c) else 0)
            minutes += int(days or 0) * 24 * 60
            if minutes > 0:
                return minutes
    raise UserError(f"{where}: {value!r} is not a time; use minutes (240) or 'HH:MM:SS' ('04:00:00')")


def mem_gb(mem: str | None) -> float | None:
    if mem is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(mem), re.IGNORECASE)
    if not match:
        raise UserError(f"executor.mem: {mem!r} is not a size; use e.g. 64G or 64GB")
    number, unit = float(match.group(1)), match.group(2).upper() or "G"
    return number * {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[unit]


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


# --- small validators ------------------------------------------------------------------------

def _check_keys(raw: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")


def _mapping(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping (key: value), got {type(raw).__name__}")
    return raw


def _list(raw: Any, where: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UserError(f"{where} must be a list, got {raw!r}")
    return raw


def _str_list(raw: Any, where: str) -> list[str]:
    out = []
    for item in _list(raw, where):
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise UserError(f"{where}: {item!r} is not a name")
        out.append(str(item))
    return out


def _check_name(name: str, where: str) -> None:
    if not NAME_RE.match(name) or "__" in name:
        raise UserError(f"{where}: {name!r} is not a usable name (letters, digits, . _ + -; no '__')")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
