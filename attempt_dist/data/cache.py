"""A content-addressed, node-shared cache of one task's tokenised splits.

    data = task_features("mnli", task_id=0, data_dir=..., seed=42, max_train=None, tokenizer=tok,
                         max_source_length=256, max_target_length=128, cache_dir=default_cache_dir())
    data.train[i], data.dev, data.dev_examples, data.test, data.test_examples

One entry per (data, split settings, tokenizer, length limits): the key hashes the bytes of
every local file the task reads (or, for hub data, every formatted example), the code that turns
rows into examples, the seed and train cap, the tokenizer's definition and both limits. A stale
entry cannot be hit: any change of data, code, tokenizer or limits is a new key.

Once per node: the first rank to take `<key>.lock` (an flock, released by the kernel if its
holder dies) loads, formats and tokenises, writes the entry into a temporary folder and renames
it into place; every other rank of the node waits on the lock, then finds the entry. Every rank
then maps the token arrays read-only (token_arrays.py), so N ranks share one copy in the page
cache and none holds a Python object per example. With local files a warm start reads no rows
at all: it hashes the files and maps the arrays. The dev/test Examples (scoring needs their
answers) are kept beside the arrays as JSON; they are small (at most ~10k per task).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..tasks import Example, get_task
from .loading import load_task_splits, local_source_files
from .token_arrays import Features, load_arrays, save_arrays, tokenize_to_arrays

CACHE_ENV = "ATTEMPT_DIST_CACHE"
FORMAT_VERSION = 3  # bump when the entry layout changes (3: uint16 token ids)
SPLITS = ("train", "dev", "test")
DONE_FILENAME = "entry.json"  # written last: an entry without it is incomplete
# The code between rows and features: a change in any of these files is a new key (the
# sampler and this file's own protocol are not: FORMAT_VERSION covers the layout).
_PACKAGE = Path(__file__).resolve().parents[1]
CODE_FILES = sorted([*(_PACKAGE / "tasks").glob("*.py"),
                     *(_PACKAGE / "data" / name for name in ("files.py", "loading.py", "features.py", "token_arrays.py"))])


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attempt-dist") / "features"


@dataclass
class TaskFeatures:
    train: Features
    dev: Features
    test: Features
    dev_examples: list[Example]
    test_examples: list[Example]
    built: bool  # this process tokenised (False: the entry was found, or another rank built it)
    key: str = ""  # the cache key: what these features were made from (a resumed run checks it)


def _tokenizer_fingerprint(tokenizer) -> bytes:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Truncation and padding are call-time state that the last call left behind, not part
        # of what the tokenizer maps text to: leave them out of the key.
        definition = json.loads(backend.to_str())
        definition.pop("truncation", None)
        definition.pop("padding", None)
        return json.dumps(definition, sort_keys=True).encode()
    return f"{tokenizer.name_or_path}:{len(tokenizer)}".encode()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_identity(task: str, data_dir, seed: int, max_train: int | None) -> tuple[str, dict | None]:
    """(a digest of the task's data and split settings, the splits when they had to be loaded
    to compute it: hub data is identified by its formatted examples, local files by their bytes)."""
    digest = hashlib.sha256(json.dumps([FORMAT_VERSION, task, seed, max_train]).encode())
    for path in CODE_FILES:
        digest.update(path.read_bytes())
    files = local_source_files(get_task(task), data_dir)
    if files is not None:
        for path in files:
            digest.update(f"{path.name}:{_file_digest(path)}".encode())
        return digest.hexdigest(), None
    splits = load_task_splits(task, data_dir, seed=seed, max_train=max_train)
    for name in SPLITS:
        for e in splits[name]:
            digest.update(json.dumps([name, e.index, e.source, e.target, e.answers]).encode())
    return digest.hexdigest(), splits


def feature_key(data_identity: str, tokenizer, max_source_length: int, max_target_length: int) -> str:
    digest = hashlib.sha256(_tokenizer_fingerprint(tokenizer))
    digest.update(json.dumps([data_identity, max_source_length, max_target_length]).encode())
    return digest.hexdigest()


def task_features(task: str, task_id: int, data_dir, seed: int, max_train: int | None, tokenizer,
                  max_source_length: int, max_target_length: int, cache_dir: str | Path | None) -> TaskFeatures:
    """The task's train/dev/test features, from the node's cache entry (built once per node);
    cache_dir None: tokenised in memory, nothing written."""
    identity, splits = _data_identity(task, data_dir, seed, max_train)
    limits = (max_source_length, max_target_length)
    key = feature_key(identity, tokenizer, *limits)

    def build() -> tuple[dict, dict]:
        loaded = splits or load_task_splits(task, data_dir, seed=seed, max_train=max_train)
        arrays = {name: tokenize_to_arrays(loaded[name], tokenizer, *limits) for name in SPLITS}
        return arrays, {name: loaded[name] for name in ("dev", "test")}

    if cache_dir is None:
        arrays, examples = build()
        return _assemble(arrays, examples, task_id, key, built=True)
    cache_dir = Path(cache_dir)
    entry = cache_dir / key
    opened = _open_entry(entry)
    if opened is not None:
        return _assemble(*opened, task_id, key, built=False)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cache_dir / f"{entry.name}.lock", "a")
    except OSError:  # a read-only cache folder costs speed, not correctness
        arrays, examples = build()
        return _assemble(arrays, examples, task_id, key, built=True)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another rank building this entry: wait for it
        opened = _open_entry(entry)
        if opened is not None:
            return _assemble(*opened, task_id, key, built=False)
        arrays, examples = build()
        try:
            _write_entry(entry, arrays, examples)
        except OSError:
            return _assemble(arrays, examples, task_id, key, built=True)
    del arrays  # the in-memory copy: every rank, the builder too, reads the shared map instead
    opened = _open_entry(entry)
    if opened is None:
        raise RuntimeError(f"{entry}: the cache entry just written cannot be read back")
    return _assemble(*opened, task_id, key, built=True)


def _assemble(arrays: dict, examples: dict, task_id: int, key: str, built: bool) -> TaskFeatures:
    return TaskFeatures(*(Features(arrays[name], task_id) for name in SPLITS),
                        examples["dev"], examples["test"], built, key)


def _write_entry(entry: Path, arrays: dict, examples: dict) -> None:
    tmp = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name in SPLITS:
            save_arrays(arrays[name], tmp, name)
        for name, exs in examples.items():
            (tmp / f"{name}.examples.json").write_text(json.dumps([dataclasses.asdict(e) for e in exs]))
        (tmp / DONE_FILENAME).write_text(json.dumps({"format": FORMAT_VERSION,
                                                     "counts": {n: len(arrays[n]["index"]) for n in SPLITS}}))
        shutil.rmtree(entry, ignore_errors=True)  # a damaged entry, set aside by _open_entry
        os.replace(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _open_entry(entry: Path) -> tuple[dict, dict] | None:
    """(arrays memory-mapped, eval examples) of a complete entry; None when absent or damaged
    (a damaged entry is never trusted: it is rebuilt under the lock). An entry with an empty
    split counts as damaged: the loader refuses empty splits, so no build writes one, and
    trusting it ended a run in "nothing to sample: task sizes [0]"."""
    if not (entry / DONE_FILENAME).is_file():
        return None
    try:
        counts = json.loads((entry / DONE_FILENAME).read_text())["counts"]
        arrays = {name: load_arrays(entry, name) for name in SPLITS}
        examples = {name: [Example(**e) for e in json.loads((entry / f"{name}.examples.json").read_text())]
                    for name in ("dev", "test")}
        if any(len(arrays[n]["index"]) != counts[n] for n in SPLITS) or \
                any(len(examples[n]) != counts[n] for n in examples):
            raise ValueError("counts differ")
        if not all(counts[n] > 0 for n in SPLITS):  # never built here (an empty split is refused): stale
            raise ValueError("an empty split")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return arrays, examples
