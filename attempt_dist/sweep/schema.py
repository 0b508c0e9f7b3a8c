"""The sweep file's format, declared once as pydantic models; bad input is one line naming its place.

    name: scaling                          # run folder name (default: file stem)
    trainer: attempt_dist.train:main       # "module:function" taking argv, returning int
    pipeline: attempt_dist.library.pipeline:main   # builds libraries (source prompts, prior)
    train: {max_length: 216, data_dir: data}          # options for every cell
    grid:                                  # required; a mapping or a list of mappings
      models: [t5-small, t5-base]          # required
      methods: [prompt, {name: attempt-no_target, method: attempt, train: {ablation: no_target}}]
      tasks: [boolq, [boolq, cb], {name: superglue, tasks: [boolq, cb]}]  # str = single task
      seeds: [42]                          # default [42]
      train: {...}                         # options for this block's cells
      library: paper                       # which library SPoT/ATTEMPT cells use
    overrides:                             # rules matching one cell must not disagree on an option
      - when: {model: t5-3b, method: [prompt, attempt], task: boolq}
        train: {batch_size: 2}
        executor: {time: 600}
    libraries:                             # built by the pipeline before the cells that read them
      paper: {sources: [mnli, sst2, qqp, qnli, squad, record], epochs: 5, train: {...},
              folder: ../paper-library, priors: [glue, qa], spot_g: true, probes: [rte, cb]}
    executor: {kind: slurm, partition: gpu, gpus_per_node: 1, nodes: 1, time: 240, requeues: 3,
               mem: 64G, cpus_per_task: 8, array_parallelism: 16, account: null, qos: null}

Training option names are the trainer's flags with underscores (batch_size -> --batch-size);
true adds a bare flag (no_prior: true -> --no-prior), false/null leaves it out, lists are
comma-joined. `extra_args: [...]` passes raw arguments through. Relative paths in the path
options (data_dir, source_prompts, prior, ...: declared path=True in train_config) and in
ds_config (when it names a file) are resolved against the sweep file's folder. Only the keys are checked here: the values are checked by the trainer's own
parser, cell by cell (check.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo, model_validator

from ..errors import UserError, shown
from .executor import UNKNOWN_KEYS, ExecutorSpec, Strict, check_keys

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
DEFAULT_TRAINER = "attempt_dist.train:main"
DEFAULT_PIPELINE = "attempt_dist.library.pipeline:main"
DEFAULT_SEEDS = [42]


def usable_name(value: Any) -> str:
    """Names become folder names and cell names joined by '__': they may not contain it."""
    usable = isinstance(value, (str, int)) and not isinstance(value, bool) and NAME_RE.match(str(value))
    if not usable or "__" in str(value):
        raise ValueError(f"{value!r} is not a usable name (letters, digits, . _ + -; no '__')")
    return str(value)


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _train(raw: dict, info: ValidationInfo) -> dict:
    """Known option names only, relative paths made absolute (the context says which and from where)."""
    ctx = info.context
    check_keys({k: v for k, v in raw.items() if k not in ctx["managed"]}, ctx["options"])  # a typo first
    managed = sorted(set(raw) & ctx["managed"])
    if managed:
        raise ValueError(f"{', '.join(managed)} cannot be set here; the grid and the sweep set them")
    out = dict(raw)
    for key in ctx["paths"]:
        if isinstance(out.get(key), str):
            out[key] = str((ctx["base"] / out[key]).resolve())
    ds = out.get("ds_config")
    if isinstance(ds, str) and (ds.endswith(".json") or "/" in ds):
        out["ds_config"] = str((ctx["base"] / ds).resolve())
    if "extra_args" in out:
        if not isinstance(out["extra_args"], list):
            raise ValueError(f"extra_args must be a list of raw arguments, got {out['extra_args']!r}")
        out["extra_args"] = [str(a) for a in out["extra_args"]]
    return out


def _function_ref(value: str) -> str:
    if ":" not in value:
        raise ValueError(f"must be 'module:function', got {value!r}")
    return value


Name = Annotated[str, BeforeValidator(usable_name)]
Names = Annotated[list[Name], BeforeValidator(_as_list)]   # one name or a list of them
Train = Annotated[dict[str, Any], AfterValidator(_train)]
FunctionRef = Annotated[str, AfterValidator(_function_ref)]


class Method(Strict):
    name: Name | None = None
    """the variant's name in cell names (default: method)"""
    method: Name | None = None
    """the trainer's --method (default: name)"""
    train: Train = {}

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, entry: Any) -> Any:
        return {"name": usable_name(entry)} if isinstance(entry, (str, int)) else entry

    @model_validator(mode="after")
    def _named(self) -> Method:
        if self.name is None and self.method is None:
            raise ValueError("a method variant needs name and method")
        return self

    @property
    def variant(self) -> str:
        return self.name or self.method

    @property
    def trainer_method(self) -> str:
        return self.method or self.name


class TaskGroup(Strict):
    name: Name | None = None
    """the label in cell names (default: the tasks joined by +)"""
    tasks: list[Name]
    """the tasks trained together"""

    @model_validator(mode="before")
    @classmethod
    def _from_short_forms(cls, entry: Any) -> Any:
        if isinstance(entry, (str, int)):
            return {"name": usable_name(entry), "tasks": [entry]}
        return {"tasks": entry} if isinstance(entry, list) else entry

    @model_validator(mode="after")
    def _not_empty(self) -> TaskGroup:
        if not self.tasks:
            raise ValueError("task group has no tasks")
        return self

    @property
    def label(self) -> str:
        return self.name or "+".join(self.tasks)


class When(Strict):
    model: Names | None = None
    method: Names | None = None
    variant: Names | None = None
    task: Names | None = None
    """a task of the cell or its task label"""
    multitask: bool | None = None


def _executor_changes(raw: dict) -> dict:
    # Checked against the sweep's executor once that is known (spec.parse_sweep).
    return check_keys(raw, set(ExecutorSpec.model_fields) - {"kind"})


class Rule(Strict):
    when: When = When()
    """conditions, all of which a cell meets (a list: any of its values)"""
    train: Train = {}
    executor: Annotated[dict[str, Any], AfterValidator(_executor_changes)] = {}
    """executor settings for these cells (all but kind)"""


class LibrarySpec(Strict):
    sources: list[Name]
    """the source tasks, e.g. the paper's six: [mnli, sst2, qqp, qnli, squad, record]"""
    epochs: Annotated[float, Field(strict=True, gt=0)] | None = None
    """epochs of each source prompt, prior and SPoT-g run (default 5, B.3)"""
    max_steps: Annotated[int, Field(strict=True, ge=1)] | None = None
    """optimizer steps of each library run instead of epochs (smoke runs)"""
    train: Train = {}
    folder: str | None = None
    """a library folder shared by several sweeps, relative to the sweep's run folder (e.g.
    ../paper-library: runs/<sweep>/../paper-library): built once, read by all of them"""
    priors: list[Name] = []
    """B.1 priors to build besides those this sweep's cells read (a shared library holds all)"""
    spot_g: bool = False
    """build SPoT-g's mixture prompt even if no cell of this sweep reads it"""
    probes: list[Name] = []
    """target tasks to probe for SPoT-t besides this sweep's own"""

    @model_validator(mode="after")
    def _has_sources(self) -> LibrarySpec:
        if not self.sources:
            raise ValueError("sources is empty; name the source tasks, e.g. [mnli, sst2, qqp, qnli]")
        return self


class Grid(Strict):
    models: list[Name]
    """the backbones, e.g. [t5-small, t5-base]"""
    methods: list[Method]
    """method names or variants {name, method, train}"""
    tasks: list[TaskGroup]
    """a task, a list trained together, or {name, tasks}"""
    seeds: list[Annotated[int, Field(strict=True)]] = DEFAULT_SEEDS
    train: Train = {}
    library: Name | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Grid:
        empty = [axis for axis in ("models", "methods", "tasks", "seeds") if not getattr(self, axis)]
        if empty:
            raise ValueError(f"empty grid ({', '.join(empty)} empty); list at least one of each")
        return self


class SweepFile(Strict):
    name: Name | None = None
    trainer: FunctionRef = DEFAULT_TRAINER
    """the training function, "module:function" taking argv and returning an exit code"""
    pipeline: FunctionRef = DEFAULT_PIPELINE
    """what builds the libraries (source prompts, prior), "module:function" like trainer"""
    train: Train = {}
    grid: Annotated[list[Grid], BeforeValidator(lambda raw: [raw] if isinstance(raw, dict) else raw)]
    """the cells: {models: [...], methods: [...], tasks: [...]}, or a list of such blocks"""
    overrides: list[Rule] = []
    libraries: dict[Name, LibrarySpec] = {}
    executor: ExecutorSpec = ExecutorSpec()

    @model_validator(mode="after")
    def _consistent(self) -> SweepFile:
        if not self.grid:
            raise ValueError("grid is empty; give at least one block of models, methods and tasks")
        for i, block in enumerate(self.grid):
            if block.library is not None and block.library not in self.libraries:
                raise ValueError(f"grid[{i}].library: unknown library {block.library!r}; "
                                 f"defined: {sorted(self.libraries) or 'none'}")
        return self


def validate(model: type[Strict], raw: Any, where: str, *, at: tuple = (), context: dict | None = None):
    """`model` from `raw`, or UserError: '<file>: <place>: <what is wrong>' for the first fault."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as err:
        # An unknown key (a typo) is named before any other fault: a misspelled option is
        # often the cause of the others, and fixing them first would not help.
        errors = err.errors(include_url=False)
        first = min(errors, key=lambda e: not str(e["msg"]).removeprefix("Value error, ").startswith(UNKNOWN_KEYS))
        place = _place(at + tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] != "value_error":  # pydantic's own words: add what it was given
            message = f"{message[:1].lower()}{message[1:]}, got {shown(first['input'], limit=60)}"
        raise UserError(f"{where}: {place + ': ' if place else ''}{message}") from None


def _place(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else str(part)
    return out

