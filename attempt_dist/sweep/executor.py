"""Where and how a sweep's jobs run: the executor block of a sweep file, checked as it is read.

`Strict` is the base of every sweep-file block (the others are in schema.py, which imports this
module): a block that is not a mapping, has an unknown key or lacks a required one is refused
with the block's known keys, or the missing key's description.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ..errors import UserError, shown_names

EXECUTOR_KINDS = ("slurm", "local", "debug")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True,
                              coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"must be a mapping (key: value), got {type(data).__name__}")
        check_keys(data, set(cls.model_fields))
        data = {k: v for k, v in data.items() if v is not None}  # `key:` or `key: null` = the default
        missing = [k for k, f in cls.model_fields.items() if f.is_required() and k not in data]
        if missing:
            raise ValueError("; ".join(f"missing {k} ({cls.model_fields[k].description})" for k in missing))
        return data


# How an unknown-key fault begins: schema.validate names such a fault before any other.
UNKNOWN_KEYS = "unknown key(s)"


def check_keys(raw: dict, known: set[str]) -> dict:
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        raise ValueError(f"{UNKNOWN_KEYS} {shown_names(unknown)}; known keys: {', '.join(sorted(known))}")
    return raw


def _minutes(value: Any) -> int:
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
    raise ValueError(f"{value!r} is not a time; use minutes (240) or 'HH:MM:SS' ('04:00:00')")


def parse_minutes(value: Any, where: str) -> int:
    """Minutes from an int or SLURM-style "MM", "HH:MM:SS" or "D-HH:MM:SS"."""
    try:
        return _minutes(value)
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None


def _gb(mem: Any) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(mem), re.IGNORECASE)
    if not match:
        raise ValueError(f"{mem!r} is not a size; use e.g. 64G or 64GB")
    number, unit = float(match.group(1)), match.group(2).upper() or "G"
    return number * {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[unit]


def mem_gb(mem: str | None) -> float | None:
    """GiB from a SLURM-style size (64G, 64GB, 512M; a bare number is GiB), for submitit."""
    if mem is None:
        return None
    try:
        return _gb(mem)
    except ValueError as err:
        raise UserError(f"executor.mem: {err}") from None


def _sorted_items(raw: Any) -> Any:
    if not isinstance(raw, (dict, tuple)):
        raise ValueError(f"must be a mapping (key: value) of sbatch options, got {type(raw).__name__}")
    return tuple(sorted(raw.items())) if isinstance(raw, dict) else raw


Count = Annotated[int, Field(strict=True, ge=0)]
Positive = Annotated[int, Field(strict=True, ge=1)]


class ExecutorSpec(Strict):
    kind: str = "local"
    """slurm, local or debug (in process)"""
    partition: str | None = None
    gpus_per_node: Count = 0
    tasks_per_node: Positive | None = None
    """ranks per node; default one per GPU, or one on the CPU"""
    nodes: Positive = 1
    time: Annotated[int, BeforeValidator(_minutes)] = 60
    """minutes, or 'HH:MM:SS' / 'D-HH:MM:SS'"""
    requeues: Count = 3
    """how many times a job cut by its time limit is requeued, resuming from its checkpoints (0: never)"""
    max_retries: Count = 2
    """how many times the sweep retries a cell by the cause of its end (requeue, or re-plan after out of memory; 0: never)"""
    mem: str | None = None
    """host memory per node, e.g. 64G (a --ds-config auto cell's default: its plan's, resources.py)"""
    node_mem: str | None = None
    """memory of one node of the partition, e.g. 256G, that --ds-config auto cells are checked against (default: sinfo's)"""
    cpus_per_task: Count | None = None
    array_parallelism: Positive | None = None
    """how many of the sweep's jobs run at once"""
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    """shell lines each SLURM job runs first"""
    additional: Annotated[tuple[tuple[str, Any], ...], BeforeValidator(_sorted_items)] = ()
    """further sbatch options, {name: value}"""

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        if kind not in EXECUTOR_KINDS:
            raise ValueError(f"{kind!r} is not one of {', '.join(EXECUTOR_KINDS)}")
        return kind

    @field_validator("mem", "node_mem")
    @classmethod
    def _mem(cls, mem: str | None) -> str | None:
        if mem is not None:
            _gb(mem)  # refused now rather than when the job is submitted
        return mem

    @model_validator(mode="after")
    def _one_machine(self) -> ExecutorSpec:
        if self.kind != "slurm" and self.nodes > 1:
            raise ValueError(f"nodes > 1 needs the slurm executor; {self.kind} runs on one machine")
        return self

    @property
    def ntasks_per_node(self) -> int:
        # One rank per GPU; CPU-only jobs run one rank unless told otherwise.
        return self.tasks_per_node or max(self.gpus_per_node, 1)

    @property
    def world_size(self) -> int:
        return self.ntasks_per_node * self.nodes

    def summary(self) -> str:
        parts = [self.kind]
        if self.partition or self.kind == "slurm":
            parts.append(f"partition={self.partition or '(cluster default)'}")
        if self.account:
            parts.append(f"account={self.account}")
        parts.append(f"nodes={self.nodes}x{self.ntasks_per_node} tasks")
        if self.gpus_per_node:
            parts.append(f"gpus/node={self.gpus_per_node}")
        parts.append(f"time={self.time}m")
        if self.mem:
            parts.append(f"mem={self.mem}")
        if self.cpus_per_task:
            parts.append(f"cpus/task={self.cpus_per_task}")
        return " ".join(parts)


def executor_json(spec: ExecutorSpec) -> dict:
    """The executor as plain JSON (job records, the sweep's plan); reads back into ExecutorSpec."""
    return {**spec.model_dump(), "setup": list(spec.setup), "additional": dict(spec.additional)}
