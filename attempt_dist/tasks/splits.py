"""Seeded, deterministic, group-aware dev/test splits (Section 4.3).

Splitting works on groups, not examples: a MultiRC question's answer options and a ReCoRD query
always land on the same side (the reference halved MultiRC by example, so questions straddled
dev and test). Each side keeps the original order of its examples, and `index` is renumbered
within each split.
"""

from __future__ import annotations

import random
from typing import Sequence

from .example import Example

DEV_HOLDOUT = 1000  # training examples moved to dev for large datasets

HALVE_SCHEME = "halve"
HOLDOUT_SCHEME = "holdout"
GIVEN_SCHEME = "given"


def group_keys(examples: Sequence[Example]) -> list[str]:
    """Distinct group keys in order of first appearance; ungrouped examples are their own group."""
    seen: dict[str, None] = {}
    for i, e in enumerate(examples):
        seen.setdefault(_key(e, i), None)
    return list(seen)


def _key(example: Example, position: int) -> str:
    return example.group if example.group is not None else f"#{position}"


def _shuffled_groups(examples: Sequence[Example], seed: int) -> list[str]:
    keys = group_keys(examples)
    random.Random(seed).shuffle(keys)
    return keys


def _take(examples: Sequence[Example], chosen: set[str]) -> tuple[list[Example], list[Example]]:
    inside, outside = [], []
    for i, e in enumerate(examples):
        (inside if _key(e, i) in chosen else outside).append(e)
    return inside, outside


def halve(examples: Sequence[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Small datasets: half the validation groups become dev, the other half test."""
    keys = _shuffled_groups(examples, seed)
    return _take(examples, set(keys[: len(keys) // 2]))


def dev_holdout_size(n_train: int) -> int:
    """1,000 examples; a fifth of train when train is tiny (fixtures), so train never empties."""
    return max(1, min(DEV_HOLDOUT, n_train // 5))


def holdout(examples: Sequence[Example], seed: int, n_dev: int) -> tuple[list[Example], list[Example]]:
    """Large datasets: whole groups, in seeded order, move to dev until it holds n_dev examples.

    Returns (train, dev).
    """
    sizes: dict[str, int] = {}
    for i, e in enumerate(examples):
        k = _key(e, i)
        sizes[k] = sizes.get(k, 0) + 1
    chosen: set[str] = set()
    count = 0
    for k in _shuffled_groups(examples, seed):
        if count >= n_dev:
            break
        chosen.add(k)
        count += sizes[k]
    dev, train = _take(examples, chosen)
    return train, dev


def subsample(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """At most `limit` examples, a seeded choice, original order kept."""
    if limit is None or len(examples) <= limit:
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def renumber(examples: Sequence[Example]) -> list[Example]:
    for i, e in enumerate(examples):
        e.index = i
    return list(examples)
