"""The result record every run ends in, and atomic JSON writing.

A finished run leaves exactly one `result.json` in its output folder, written only when the
run completes (write to a temporary file, fsync, rename), so a folder either holds a whole
record or none. A run that could not fit in memory (or failed otherwise) leaves
`failure.json` instead, so sweeps and plots can tell "did not fit" from "not run yet".

result.json keys (schema 1):
  schema            1
  status            "completed"
  config            the full resolved training configuration (dict)
  metrics           {"dev": {task: {metric: float}}, "test": {task: {metric: float}}}
  best              {"step": int, "epoch": int, "dev_score": float}
  params            {"trainable": int, "trainable_per_task": float, "total": int}
  memory            {"peak_allocated_bytes": int, "device_peak_bytes": int | None,
                     "cap_bytes": int | None}
  throughput        {"train_examples_per_s": float, "steps": int, "examples": int,
                     "eval": {split: {"seconds": float, "calls": int}}}  (eval: this process's
                     evaluations, dev during training and after it; not carried over --resume)
  wall_time_s       float
  world_size        int
  versions          {package: version}
  git_revision      str | None
failure.json keys: schema, status ("oom" | "failed"), reason (one line), config.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILENAME = "result.json"
FAILURE_FILENAME = "failure.json"
SCHEMA_VERSION = 1


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=_jsonable)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as handle:
        return json.load(handle)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "deepspeed", "datasets", "accelerate", "submitit", "attempt-dist"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_revision(start: str | os.PathLike | None = None) -> str | None:
    """The commit the code runs from, or None outside a git checkout."""
    here = Path(start or __file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
