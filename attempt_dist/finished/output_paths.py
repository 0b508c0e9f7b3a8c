"""Where the after-training commands (predict, export, plot) may write.

A run folder and a sweep folder hold only what training and sweeps write: predict and export
never write inside one (nor does export replace a folder that holds one). Paths are resolved
(symlinks followed) before deciding, so a link to a run folder is that run folder.

    run folder    is_run_folder: the mark every run writes when it takes its folder, or (runs
                  from before the mark) a run's config.json, a run record or a run's lock
    sweep folder  sweep.json holding "cells"

Nothing here imports torch: these checks come before anything heavy is loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UserError
from ..training.runlock import read_owner
from .record import FAILURE_STATUSES, RESULT_FILENAME

RUN_CONFIG = "config.json"
SWEEP_FILE = "sweep.json"
RUN_MARKER = ".attempt-dist-run.json"  # written by every run when it takes its folder


def json_object(path: Path) -> dict | None:
    """The JSON object in `path`; None when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_run_folder(out: Path) -> bool:
    """Whether `out` holds a training run: its mark, or (runs from before the mark) a run's
    config.json, a run record (result.json, failure.json, a sweep's set-aside failure.*.json) or
    a training run's lock."""
    if (out / RUN_MARKER).is_file():
        return True
    config = json_object(out / RUN_CONFIG)
    if config is not None and isinstance(config.get("train"), dict):
        return True
    for record in (out / RESULT_FILENAME, *out.glob("failure*.json")):
        data = json_object(record)
        if data is not None and "config" in data and data.get("status") in ("completed", *FAILURE_STATUSES):
            return True
    return (read_owner(out) or {}).get("what") == "training run"


def folder_kind(folder: Path) -> str | None:
    """"run" or "sweep" when `folder` is one (see the module's doc), else None."""
    if not folder.is_dir():
        return None
    if is_run_folder(folder):
        return "run"
    sweep = json_object(folder / SWEEP_FILE)
    if sweep is not None and "cells" in sweep:
        return "sweep"
    return None


def enclosing_protected(path: str | os.PathLike) -> tuple[str, Path] | None:
    """(kind, folder) of the run or sweep folder that `path` is or lies inside (resolved), or None."""
    resolved = Path(path).resolve()
    for folder in (resolved, *resolved.parents):
        kind = folder_kind(folder)
        if kind:
            return kind, folder
    return None


def protected_within(folder: Path) -> tuple[str, Path] | None:
    """(kind, folder) of a run or sweep folder at or below `folder` (links not followed), or None."""
    for root, dirs, _ in os.walk(folder):
        kind = folder_kind(Path(root))
        if kind:
            return kind, Path(root)
        dirs.sort()
    return None


def check_folder_target(out: str | os.PathLike, flag: str) -> Path:
    """`out` as a folder to write into: refused when it, or what would hold it, is a file."""
    out = Path(out)
    existing = next((p for p in (out, *out.parents) if p.exists() or p.is_symlink()), None)
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == out else f"lies under {existing}, which is a file"
        raise UserError(f"{flag} {out} {what}; it needs a folder: choose a new folder name")
    return out


def check_predictions_output(output: str | os.PathLike) -> Path:
    """predict --output: a file path outside every run and sweep folder, not a folder itself."""
    output = Path(output)
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file name, e.g. --output {output / 'predictions.jsonl'}")
    check_folder_target(output.parent, f"--output {output}: its folder")
    protected = enclosing_protected(output)  # resolved: a link into a run folder is refused too
    if protected:
        kind, folder = protected
        instead = folder.parent / f"{folder.name}-predictions.jsonl"
        raise UserError(f"--output {output} lies inside the {kind} folder {folder}, which only "
                        f"{'training' if kind == 'run' else 'the sweep'} writes; write predictions outside it, "
                        f"e.g. --output {instead}")
    return output
