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
    """A sweep from its file's content (`raw`, as YAML gives it), expanded and checked."""
    sweep = expand_sweep(raw, source=source, executor_kind=executor_kind, data_dir=data_dir)
    check_cell_options(sweep)  # the trainer's own parser, on every cell
    return sweep
