"""The run record, typed: what result.json and failure.json hold, written by train and read by
plots, tables, `attempt-dist compare`, sweep status and the benchmarks.

    from attempt_dist.finished.record import read_record
    record = read_record("runs/rte/result.json")   # RunResult (or RunFailure for failure.json)
    record.metrics["test"]["rte"]["accuracy"], record.params.trainable_per_task

A finished run leaves exactly one `result.json` (RESULT_FILENAME) in its output folder, written
only when the run completes and atomically (attempt_dist.atomic_files), so a folder either
holds a whole record or none. A run that could not fit in memory (or failed otherwise) leaves
`failure.json` (FAILURE_FILENAME) instead, so sweeps and plots can tell "did not fit" from
"not run yet".

The dataclasses below are the schema (version SCHEMA_VERSION). A run writes
`RunResult(...).to_json()` when it completes and `RunFailure` when it could not fit or
failed. `read_record` checks every field against these annotations and raises a RecordError
(a UserError: one line naming the file and the field) for anything it cannot read: truncated
JSON, a JSON list, a field of the wrong type, another schema. Records of schema 1 still read:
they carried fewer fields, so a field a schema-1 record lacks reads as None.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union

from ..errors import UserError

RESULT_FILENAME = "result.json"
FAILURE_FILENAME = "failure.json"
SCHEMA_VERSION = 2  # 2 adds score, history, train_loss, ... (schema 1 still reads)
READABLE_SCHEMAS = (1, SCHEMA_VERSION)
FAILURE_STATUSES = ("oom", "failed")

# split -> task -> metric -> value (percent)
Metrics = dict[str, dict[str, dict[str, float]]]


class RecordError(UserError):
    """A run record that cannot be read; the message names the file and the field."""


@dataclass
class Best:
    """The dev evaluation whose weights the final numbers come from."""

    step: int
    epoch: float
    dev_score: float


@dataclass
class EvalPoint:
    """One dev evaluation during training."""

    step: int
    epoch: float
    score: float
    metrics: dict[str, dict[str, float]]


@dataclass
class ParamCounts:
    trainable: int
    trainable_per_task: int | float
    """trainable / number of tasks: what each task costs to train and store."""
    total: int
    """Parameters of the backbone."""


@dataclass
class MemoryUse:
    peak_allocated_bytes: int | None
    """GPU: torch's peak allocation; CPU: the process's peak resident set."""
    device_peak_bytes: int | None
    """NVML's peak for the whole device (CUDA context, NCCL buffers); None on the CPU."""
    cap_bytes: int | None
    """--gpu-mem-cap, when one was set."""


def added_field():
    """A field added to schema 2 after its first records: absent in those, read as None."""
    return field(default=None, metadata={"added": True})


@dataclass
class SteadyThroughput:
    """Training speed past the first steps (attempt_dist.training.step_meter; FLOPs: attempt_dist.planning.flops)."""

    warmup_steps: int
    """Optimizer steps left out (of this process: a --resume starts counting again)."""
    timed_steps: int
    step_time_s: float
    step_time_median_s: float
    examples_per_s: float
    tokens_per_s: float
    """Real (non-padding) input and target tokens per second, all ranks."""
    padding_fraction: float
    model_tflops_per_s: float
    """Per device: forward plus the method's backward."""
    mfu: float | None
    """model FLOP/s over the device's dense peak; None where the peak is unknown (the CPU)."""
    hfu: float | None
    """As mfu, with activation checkpointing's recomputation."""
    peak_tflops: float | None

    @classmethod
    def of(cls, summary: dict | None) -> "SteadyThroughput | None":
        return None if summary is None else cls(**summary)


@dataclass
class Throughput:
    train_examples_per_s: float
    steps: int
    examples: int
    eval: dict[str, dict[str, float]]
    """split -> {"seconds", "calls"}: this process's evaluations (not carried over --resume); newer
    records add "generated_tokens", "decode_steps" and, where any, "ms_per_generated_token" and
    "ms_per_decode_step" (attempt_dist.training.eval_time)."""
    steady: SteadyThroughput | None = added_field()
    """None when the run had no step past the warm-up to time."""
    eval_share: float | None = added_field()
    """Evaluation seconds (every split) over the run's wall time in this process."""


@dataclass
class DeepSpeedUse:
    stage: int
    config: str
    """--ds-config as given: a shipped name, a path or "auto"."""


@dataclass
class RunResult:
    """result.json: a run that completed. Fields after `metrics` are None only in schema-1 records."""

    status: Literal["completed"]
    config: dict[str, Any]
    """The full resolved training configuration (TrainConfig.to_dict())."""
    metrics: Metrics
    """Every metric of every task, split -> task -> metric -> percent."""
    score: dict[str, float] | None = None
    """split -> mean over tasks of each task's headline metric (what best-on-dev compares)."""
    best: Best | None = None
    history: list[EvalPoint] | None = None
    train_loss: list[float] | None = None
    """Rank 0's last micro-batch loss at each optimizer step."""
    params: ParamCounts | None = None
    learning_rates: dict[str, float] | None = None
    """Optimizer parameter group -> peak learning rate."""
    warmup_steps: int | None = None
    warmup_capped: bool | None = None
    """True for an explicit --max-steps (smoke) run whose warm-up was capped at a tenth of its steps."""
    steps: int | None = None
    memory: MemoryUse | None = None
    throughput: Throughput | None = None
    wall_time_s: float | None = None
    world_size: int | None = None
    nodes: int | None = None
    """How many nodes the ranks ran on (SLURM's node names, else host names)."""
    deepspeed: DeepSpeedUse | None = None
    plan: dict[str, Any] | None = None
    """--ds-config auto: the planner's candidates and choice; None otherwise."""
    versions: dict[str, str] | None = None
    git_revision: str | None = None
    schema: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    def speed(self) -> dict | None:
        """How well the run used its device, as sweep status and compare show it: steady-state
        real tokens/s, examples/s and MFU (the first steps left out), or None for a run too short to
        have a steady state (or a record from before runs measured one)."""
        steady = self.throughput.steady if self.throughput is not None else None
        if steady is None:
            return None
        return {"tokens_per_s": steady.tokens_per_s, "examples_per_s": steady.examples_per_s, "mfu": steady.mfu}


def speed_text(speed: dict | None) -> dict[str, str]:
    """RunResult.speed() as tables show it: {"tokens/s", "examples/s", "MFU"}, "-" where the run had
    no steady state (too few steps) or the device's peak is unknown (the CPU: MFU)."""
    speed = speed or {}
    tokens, examples, mfu = speed.get("tokens_per_s"), speed.get("examples_per_s"), speed.get("mfu")
    return {"tokens/s": f"{tokens:,.0f}" if tokens is not None else "-",
            "examples/s": f"{examples:.3g}" if examples is not None else "-",
            "MFU": f"{100 * mfu:.1f}%" if mfu is not None else "-"}


@dataclass
class RunFailure:
    """failure.json: a run that did not fit in memory (oom) or failed otherwise."""

    status: Literal["oom", "failed"]
    reason: str
    """One line: what went wrong and what to do."""
    config: dict[str, Any]
    schema: int = SCHEMA_VERSION
    exit_code: int | None = None
    """The trainer's exit code where a sweep job saw it (3 out of memory, 4 diverged, 5 a rank lost, 2 bad input)."""

    def to_json(self) -> dict:
        return asdict(self)


def read_record(path: str | Path) -> RunResult | RunFailure:
    """result.json as a RunResult, failure.json as a RunFailure; RecordError when unreadable."""
    path = Path(path)
    data = read_object(path)
    schema = data.get("schema")
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise RecordError(f"{path}: field 'schema' should be an integer, got {json_kind(schema)} {json_short(schema)}"
                          if "schema" in data else f"{path}: required field 'schema' is missing")
    if schema not in READABLE_SCHEMAS:
        raise RecordError(f"{path}: schema {schema}, this attempt-dist reads run records of schema "
                          f"{' or '.join(map(str, READABLE_SCHEMAS))}")
    cls = RunFailure if path.name == FAILURE_FILENAME else RunResult
    allowed = FAILURE_STATUSES if cls is RunFailure else ("completed",)
    status = data.get("status")
    if status not in allowed:
        raise RecordError(f"{path}: status {status!r}, expected {' or '.join(map(repr, allowed))}")
    return _build(cls, data, path, "", schema=schema)


def read_object(path: Path) -> dict:
    """A JSON object from `path`; RecordError naming the file when it is unreadable or not an object."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON ({err.msg}: line {err.lineno} column {err.colno}); "
                          f"the file is truncated or corrupt: re-run that run or remove the file") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: holds a JSON {json_kind(data)} where a run record (a JSON object) belongs")
    return data


# --- checking JSON against the dataclass annotations -----------------------------------------

# Optional top-level fields added to schema 2 after records of it were written: a record
# without one reads as the field's default (None), every other schema-2 field stays required.
ADDED_IN_SCHEMA_2 = frozenset({"nodes", "exit_code"})


def _build(cls, data: dict, path: Path, where: str, *, schema: int):
    """cls(**data) with every field checked. Schema 2 requires every field (None only where the
    annotation admits it); a schema-1 record (lenient) needs only its top-level fields without defaults."""
    hints = typing.get_type_hints(cls)
    lenient = schema < SCHEMA_VERSION
    values = {}
    for f in fields(cls):
        label = where + f.name
        if f.name in data:
            values[f.name] = _check(data[f.name], hints[f.name], path, label, schema)
        elif f.name in ADDED_IN_SCHEMA_2 and where == "":
            values[f.name] = f.default
        elif lenient and not (where == "" and f.default is MISSING):
            values[f.name] = None if f.default is MISSING else f.default
        elif f.metadata.get("added"):
            values[f.name] = None
        else:
            raise RecordError(f"{path}: required field {label!r} is missing from this schema {schema} record")
    return cls(**values)


def _check(value, hint, path: Path, label: str, schema: int):
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _check(value, option, path, label, schema)
            except RecordError:
                if len(args) - (type(None) in args) == 1:
                    raise
        _wrong(value, hint, path, label)
    if value is None:
        raise RecordError(f"{path}: field {_shown(label)} should be {describe_type(hint)}, got null")
    if is_dataclass(hint):
        if not isinstance(value, dict):
            _wrong(value, hint, path, label)
        return _build(hint, value, path, label + ".", schema=schema)
    if origin is Literal:
        if value not in args:
            raise RecordError(f"{path}: field {label!r} is {value!r}, expected {' or '.join(map(repr, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            _wrong(value, hint, path, label)
        return {k: _check(v, args[1], path, f"{label}[{k!r}]", schema) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            _wrong(value, hint, path, label)
        return [_check(v, args[0], path, f"{label}[{i}]", schema) for i, v in enumerate(value)]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _wrong(value, hint, path, label)
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            _wrong(value, hint, path, label)
        return value
    raise TypeError(f"record field {label} has an annotation the reader does not know: {hint}")


def _shown(label: str) -> str:
    return label if "[" in label else repr(label)


def _wrong(value, hint, path: Path, label: str):
    raise RecordError(f"{path}: field {_shown(label)} should be {describe_type(hint)}, got {json_kind(value)} {json_short(value)}")


def describe_type(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(hint) if a is not type(None))
    if is_dataclass(hint) or origin is dict:
        return "an object"
    if origin is list:
        return "a list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(hint, str(hint))


_KIND = {dict: "object", list: "list", str: "string", int: "integer", float: "number", bool: "boolean"}


def json_kind(value: Any) -> str:
    return "null" if value is None else _KIND.get(type(value), type(value).__name__)


def json_short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
