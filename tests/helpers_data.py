"""Shared helpers for the task/data tests."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def copy_task(src_dir: Path, dst_dir: Path, task: str) -> Path:
    """Copy one task's fixture folder, so a test can break a file without touching the repo."""
    for f in (src_dir / task).iterdir():
        (dst_dir / task).mkdir(parents=True, exist_ok=True)
        (dst_dir / task / f.name).write_bytes(f.read_bytes())
    return dst_dir / task
