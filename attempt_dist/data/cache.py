"""A content-addressed cache of tokenised features.

The key hashes everything the features depend on: the tokenizer itself (its serialised
definition), the length limits, the task id and every example's text and index. Loading and
formatting still run (the hub data is cached by `datasets` itself); what is saved is the
tokenisation, the slow part on large tasks (MNLI's 393k pairs), repeated by every rank of
every run. A stale entry cannot be hit: any change of data, tokenizer or limits is a new key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import torch

from ..atomic_files import atomic_path
from ..tasks import Example
from .features import tokenize_examples

CACHE_ENV = "ATTEMPT_DIST_CACHE"
FORMAT_VERSION = 1  # bump when the feature layout changes


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attempt-dist") / "features"


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


def feature_key(examples: Sequence[Example], tokenizer, task_id: int, max_source_length: int,
                max_target_length: int) -> str:
    digest = hashlib.sha256(_tokenizer_fingerprint(tokenizer))
    digest.update(json.dumps([FORMAT_VERSION, task_id, max_source_length, max_target_length]).encode())
    for example in examples:
        digest.update(json.dumps([example.index, example.source, example.target]).encode())
    return digest.hexdigest()


def cached_tokenize(examples: Sequence[Example], tokenizer, task_id: int, max_source_length: int,
                    max_target_length: int, cache_dir: str | Path | None) -> list[dict]:
    """tokenize_examples(...), read from / written to `cache_dir` (None: no cache)."""
    if cache_dir is None or not examples:
        return tokenize_examples(examples, tokenizer, task_id, max_source_length, max_target_length)
    path = Path(cache_dir) / f"{feature_key(examples, tokenizer, task_id, max_source_length, max_target_length)}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    features = tokenize_examples(examples, tokenizer, task_id, max_source_length, max_target_length)
    try:
        with atomic_path(path) as tmp:  # ranks may write the same entry: the temp name is per process
            torch.save(features, tmp)
    except OSError:
        pass  # a read-only cache folder costs speed, not correctness
    return features
