"""Which code produced a run: the installed package versions and the git commit, recorded in
result.json (`versions`, `git_revision`) and in the benchmarks' reports."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


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
