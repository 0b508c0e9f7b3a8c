"""The recipe's first step: a sweep file read, expanded into cells and checked cell by cell.

The file's keys are checked as it is expanded (spec.py, schema.py); then every cell's options go
through the trainer's own parser (check.py), so a sweep that reads is one the trainer accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from .check import check_cell_options
from .spec import Sweep, expand_sweep


def load_sweep(path: str | Path, *, executor_kind: str | None = None,
               data_dir: str | None = None, executor_settings: dict | None = None) -> Sweep:
    """Read a sweep file; `executor_kind`, `data_dir` and `executor_settings` (executor keys:
    partition, account, time, ...) override the file's values."""
    path = Path(path)
    raw = _yaml_file(path, f"sweep file {path} does not exist; pass a YAML sweep file (see launch/sweeps/)")
    return parse_sweep(raw, source=path, executor_kind=executor_kind, data_dir=data_dir,
                       executor_settings=executor_settings)


def read_executor_file(path: str | Path) -> dict:
    """A user's cluster settings: a YAML mapping of executor keys (partition, account, qos, time, ...)."""
    path = Path(path)
    raw = _yaml_file(path, f"executor file {path} does not exist; write a YAML mapping such as `partition: gpu`")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: must be a mapping of executor keys (partition: gpu, account: ..., time: ...)")
    return raw


def parse_sweep(raw: Any, *, source: Path | None = None, executor_kind: str | None = None,
                data_dir: str | None = None, executor_settings: dict | None = None) -> Sweep:
    """A sweep from its file's content (`raw`, as YAML gives it), expanded and checked."""
    sweep = expand_sweep(raw, source=source, executor_kind=executor_kind, data_dir=data_dir,
                         executor_settings=executor_settings)
    check_cell_options(sweep)  # the trainer's own parser, on every cell
    return sweep


def _yaml_file(path: Path, missing: str):
    """The file's YAML; a UserError saying `missing` when there is no file, and the line and
    column where the parser gave up (1-based, as editors count them) when it is not YAML."""
    if not path.is_file():
        raise UserError(missing)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}: not valid YAML: {problem}; fix that line and run again") from None
