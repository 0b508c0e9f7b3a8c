"""Tokenised features as flat arrays: every sequence end to end plus offsets, memory-mappable.

    arrays = tokenize_to_arrays(examples, tokenizer, max_source_length=256, max_target_length=128)
    save_arrays(arrays, folder, "train");  feats = Features(load_arrays(folder, "train"), task_id=0)
    feats[i]          # {"input_ids", "labels", "task_id", "index"}, the dicts tokenize_examples makes
    feats.lengths     # input lengths, one int array: no Python object per example

Held as Python lists, MNLI's 393k tokenised pairs cost hundreds of MB per rank (an int object
per token); as arrays opened with mmap_mode="r" they cost nothing until a page is read, and
every rank of a node shares the same page cache. Token ids are uint16 when the vocabulary fits
(T5's 32128 does): half the disk and page cache of int32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..tasks import Example
from .features import tokenize_examples

# The arrays of one split, each saved as <split>.<name>.npy.
ARRAY_NAMES = ("input_ids", "input_offsets", "labels", "label_offsets", "index")
# Examples tokenised per call: bounds what is alive at once during a build. A fast tokenizer's
# Encoding keeps every token of the untruncated text (strings, offsets, the overflow), so 8192
# ReCoRD passages held 0.3 GiB at once; 1024 hold ~0.04 GiB at the same speed (measured).
CHUNK = 1024


def token_dtype(tokenizer) -> type:
    """uint16 when every id of the tokenizer fits in it, else int32."""
    return np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.int32


def tokenize_to_arrays(examples: Sequence[Example], tokenizer, max_source_length: int,
                       max_target_length: int) -> dict[str, np.ndarray]:
    """tokenize_examples(...) chunk by chunk, packed into flat token arrays (token_dtype) with
    int64 offsets."""
    dtype = token_dtype(tokenizer)
    inputs, labels, index = [], [], []
    for start in range(0, len(examples), CHUNK):
        chunk = tokenize_examples(examples[start:start + CHUNK], tokenizer, 0, max_source_length, max_target_length)
        inputs.append(_pack([f["input_ids"] for f in chunk], dtype))
        labels.append(_pack([f["labels"] for f in chunk], dtype))
        index.append(np.array([f["index"] for f in chunk], dtype=np.int64))
    input_ids, input_offsets = _concat(inputs, dtype)
    label_ids, label_offsets = _concat(labels, dtype)
    return {"input_ids": input_ids, "input_offsets": input_offsets, "labels": label_ids,
            "label_offsets": label_offsets, "index": np.concatenate(index) if index else np.zeros(0, np.int64)}


def _pack(sequences: list[list[int]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter((t for s in sequences for t in s), dtype=dtype, count=int(lengths.sum()))
    return flat, lengths


def _concat(parts: list[tuple[np.ndarray, np.ndarray]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    flat = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype)
    lengths = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    return flat, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def save_arrays(arrays: dict[str, np.ndarray], folder: Path, split: str) -> None:
    for name in ARRAY_NAMES:
        np.save(folder / f"{split}.{name}.npy", arrays[name], allow_pickle=False)


def load_arrays(folder: Path, split: str) -> dict[str, np.ndarray]:
    """The split's arrays, memory-mapped read-only; ValueError when they do not fit together."""
    arrays = {name: np.load(folder / f"{split}.{name}.npy", mmap_mode="r", allow_pickle=False)
              for name in ARRAY_NAMES}
    n = len(arrays["index"])
    for ids, offsets in (("input_ids", "input_offsets"), ("labels", "label_offsets")):
        if len(arrays[offsets]) != n + 1 or int(arrays[offsets][-1]) != len(arrays[ids]):
            raise ValueError(f"{folder}: {split}.{offsets} does not match {split}.{ids}")
    return arrays


class Features(Sequence):
    """One split of one task over flat arrays (in memory or memory-mapped), indexed like a list
    of feature dicts; token ids come back as arrays of the stored dtype (views into the map, no
    copy; the collator widens them to int64 tensors)."""

    def __init__(self, arrays: dict[str, np.ndarray], task_id: int, count: int | None = None):
        self.arrays = arrays
        self.task_id = int(task_id)
        total = len(arrays["index"])
        self.count = total if count is None else min(count, total)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.count))]
        if not -self.count <= i < self.count:
            raise IndexError(i)
        i %= self.count
        a = self.arrays
        return {"input_ids": a["input_ids"][a["input_offsets"][i]:a["input_offsets"][i + 1]],
                "labels": a["labels"][a["label_offsets"][i]:a["label_offsets"][i + 1]],
                "task_id": self.task_id, "index": int(a["index"][i])}

    def head(self, n: int | None) -> "Features":
        """The first n features (all with None), sharing the same arrays."""
        return self if n is None else Features(self.arrays, self.task_id, n)

    @property
    def lengths(self) -> np.ndarray:
        """Input lengths in tokens (eos included), for length-aware batching and sorting."""
        return np.diff(self.arrays["input_offsets"][: self.count + 1])
