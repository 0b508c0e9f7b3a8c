"""Atomic file writing (text, JSON, JSONL, any path) and the JSON reader beside it.

A reader sees either the old file or the whole new one, never a half-written file: what is
written goes to a temporary file beside the target, is fsynced, and replaces the target. Run
records, checkpoints' markers, caches, artefacts and sweep state all write this way.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask


# What open() gives a new file (0644 under the usual umask 022), read once at import while one
# thread runs, so that no other thread ever sees the umask changed.
_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The one owner of atomic file writes: yield a temporary path beside `path` to write to.

    When the block ends the temporary file replaces `path`, so readers see either the old file
    or the whole new one; when it raises the temporary file is removed. The temporary name
    carries the process id, so ranks writing the same file never share one. For writers that
    take a path (torch.save); text and JSON go through write_text_atomic / write_json_atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if tmp.exists():  # some writers (safetensors) create their files 0600: give the usual mode
            os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8, fsynced) so that readers see either the old file or the whole new one."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON so that readers see either the old file or the whole new one."""
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[Any], *, default=None) -> Path:
    """Write one JSON object per line (streamed, fsynced), atomically like write_text_atomic."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, default=default) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


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
