"""Parameter counts, activation traces and whole answers, kept on disk per configuration and code version.

    count = cached("params", {"model": "t5-3b", "method": "attempt", ...}, lambda: compute())
    code = cached_answer(argv, lambda: run(argv))     # `params` and `plan`: the printed answer

`params` and `plan` build the real model on the meta device and run it (planning/trace.py):
exact, but transformers' import and the trace take 5-25 s per call on a loaded 2-core
machine, for an answer that only changes when the configuration or the code does. So the
answer is stored under a key that hashes the configuration, the installed torch and
transformers versions and every source file of this package: any change to any of them is a
new key, so a stale entry cannot be hit (as in data/cache.py). A hit reads one JSON file.

A repeated `params` or `plan` command (same arguments, same terminal, same host memory) is
answered from its printed output (`cached_answer`), before torch is imported: the methods'
option table that builds these commands' parsers imports torch (1.3 s of CPU), and a hit
then takes about 0.3 s. The first run of a configuration computes, and a new command line
over known configurations reads the counts and traces.

Where: $ATTEMPT_DIST_CACHE/shapes, else ~/.cache/attempt-dist/shapes (the tokenised-data
cache's root). ATTEMPT_DIST_SHAPE_CACHE=off turns it off (always compute).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import sys
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


# What a printed answer depends on besides the arguments and the code: rich's reading of the
# terminal, and the host memory `plan` checks by default.
_OUTPUT_ENV = ("COLUMNS", "LINES", "TERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
ANSWER_EXIT_CODES = (0, 3)  # an answer (plan's 3: nothing fits); bad input (2) is never kept


class _Tee(io.TextIOBase):
    """stdout as it is (a terminal stays a terminal for rich) plus a copy of what is written."""

    def __init__(self, stream) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")


def _host_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cached_answer(argv: list[str], run: Callable[[], int]) -> int:
    """run()'s exit code, its stdout replayed from the cache when this very command was answered
    before in the same conditions; otherwise run, and its answer kept."""
    if os.environ.get(SWITCH_ENV, "").lower() in ("off", "0", "no"):
        return run()
    tty = sys.stdout.isatty()
    config = {"argv": list(argv), "tty": tty, "columns": shutil.get_terminal_size().columns if tty else None,
              "env": {name: os.environ.get(name) for name in _OUTPUT_ENV}, "host_memory": _host_memory()}
    path = cache_dir() / "answers" / f"{cache_key('answer', config)}.json"
    try:
        kept = json.loads(path.read_text())
        sys.stdout.write(kept["stdout"])
        sys.stdout.flush()
        return int(kept["code"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        code = run()
    if code in ANSWER_EXIT_CODES:
        try:
            write_text_atomic(path, json.dumps({"config": config, "stdout": tee.copy.getvalue(), "code": code}))
        except OSError:
            pass
    return code
