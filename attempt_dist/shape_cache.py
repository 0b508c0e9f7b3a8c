"""Parameter counts and activation traces, kept on disk per configuration and code version.

    count = cached("params", {"model": "t5-3b", "method": "attempt", ...}, lambda: compute())

`params` and `plan` build the real model on the meta device and run it (planning/trace.py):
exact, but transformers' import and the trace take 5-25 s per call on a loaded 2-core
machine, for an answer that only changes when the configuration or the code does. So the
answer is stored under a key that hashes the configuration, the installed torch and
transformers versions and every source file of this package: any change to any of them is a
new key, so a stale entry cannot be hit (as in data/cache.py). A hit reads one JSON file.

Where: $ATTEMPT_DIST_CACHE/shapes, else ~/.cache/attempt-dist/shapes (the tokenised-data
cache's root). ATTEMPT_DIST_SHAPE_CACHE=off turns it off (always compute).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from .atomic_files import write_text_atomic

ROOT_ENV = "ATTEMPT_DIST_CACHE"  # shared with data/cache.py's tokenised features
SWITCH_ENV = "ATTEMPT_DIST_SHAPE_CACHE"
_PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "attempt-dist") / "shapes"


@functools.cache
def code_version() -> str:
    """A hash of this package's sources and the versions of the libraries that build the model."""
    digest = hashlib.sha256()
    for library in ("torch", "transformers"):
        try:
            digest.update(f"{library}={metadata.version(library)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library}=none;".encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(kind: str, config: dict) -> str:
    text = json.dumps({"kind": kind, "config": config, "code": code_version()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cached(kind: str, config: dict, compute: Callable[[], Any]) -> Any:
    """compute()'s JSON-able result for `config`, read from the cache or computed and stored."""
    if os.environ.get(SWITCH_ENV, "").lower() in ("off", "0", "no"):
        return compute()
    path = cache_dir() / kind / f"{cache_key(kind, config)}.json"
    try:
        return json.loads(path.read_text())["value"]
    except (OSError, ValueError, KeyError):
        pass  # absent or unreadable (a write cut short): computed again
    value = compute()
    try:
        # Compact: a trace's timelines are tens of thousands of numbers.
        write_text_atomic(path, json.dumps({"kind": kind, "config": config, "value": value}, default=str))
    except OSError:
        pass  # a read-only home: the answer is still right, only not kept
    return value
