"""Mixed-task batches, sharded over ranks, resumable mid-epoch.

    sampler = MultiTaskSampler([len(f) for f in features_per_task], batch_size=8,
                               rank=rank, world_size=world, seed=42)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in sampler:            # [(task_id, example_index), ...] of length batch_size
            collate([features[t][i] for t, i in batch])

Each item is a (task_id, example_index) pair: task_id indexes `sizes`, example_index indexes
that task's features. Batch size is per rank.

One epoch: every task contributes its examples once (temperature 1, no cap); with a cap a
task contributes `cap` examples (a fresh seeded choice each epoch); with temperature T the
mixture follows n_t^(1/T) over the same total, drawing a task's examples without replacement
and cycling through repeated permutations if it needs more than it has. The epoch's items are
shuffled together (tasks mixed inside a batch) with a generator seeded by (seed, epoch), the
same on every rank. Global batch s holds items [s*B*W, (s+1)*B*W); rank r takes slice r of it.
So across ranks every item is seen exactly once per epoch, and all ranks run the same number
of steps: with drop_last=False the last global batch is filled by repeating items from the
start of the epoch's order (at most B*W - 1 repeats; deduplicate by (task_id, index) when
scoring); with drop_last=True the incomplete last global batch is dropped.

Length grouping (`lengths` given, `group_by_length=True`; --group-by-length): the epoch's
global order is cut into mega-batches of `mega_batch` global batches; inside each, items are
sorted by input length (longest first, ties in their shuffled order) and cut into global
batches again, and the epoch's global batches are then shuffled (seeded by (seed, epoch)) so
long and short batches alternate through the epoch. A batch then holds examples of similar
length and pays little padding. The epoch's items, their count per task, the per-rank slicing
and the number of steps are exactly those without grouping; tasks still mix (a batch holds
the examples of any task whose lengths are alike). The order is a function of (seed, epoch)
alone, so resume is exact as below.

Resume: state_dict() holds (epoch, position) where position counts batches already handed
out in the epoch; load_state_dict() makes the next iteration continue with the next batch
(with another micro-batch size: the next example, where the saved position ends on one).
A finished pass advances to the next epoch by itself, so set_epoch(e) for the current epoch
is a no-op. If a DataLoader prefetches from this sampler (workers), count steps in the
training loop and resume with load_state_dict({"epoch": e, "position": steps_done}).
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from ..errors import UserError

MEGA_BATCH = 50  # global batches sorted together by length (as transformers' length grouping)
GROUPING_STREAM = 1  # a third seed word: the batch shuffle's generator differs from the item shuffle's


class MultiTaskSampler:
    def __init__(self, sizes: Sequence[int], batch_size: int, rank: int, world_size: int,
                 seed: int, temperature: float = 1.0, cap: int | None = None,
                 shuffle: bool = True, drop_last: bool = False,
                 lengths: Sequence[Sequence[int]] | None = None, group_by_length: bool = False,
                 mega_batch: int = MEGA_BATCH):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch_size={batch_size} rank={rank} world_size={world_size}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not sizes or any(n < 0 for n in sizes) or sum(sizes) == 0:
            raise UserError(f"nothing to sample: task sizes {list(sizes)}")
        self.sizes = [int(n) for n in sizes]
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.temperature = temperature
        self.cap = cap
        self.shuffle = shuffle
        self.drop_last = drop_last
        if group_by_length and (lengths is None or [len(x) for x in lengths] != self.sizes):
            raise ValueError("group_by_length needs the input length of every example of every task")
        if mega_batch < 1:
            raise ValueError(f"mega_batch must be >= 1, got {mega_batch}")
        self.group_by_length = group_by_length
        self.lengths = [np.asarray(x, dtype=np.int64) for x in lengths] if group_by_length else None
        self.mega_batch = mega_batch
        self.epoch = 0
        self.position = 0

    # --- epoch composition ---------------------------------------------------------------
    def counts(self) -> list[int]:
        """How many items each task contributes to one epoch."""
        capped = [min(n, self.cap) if self.cap is not None else n for n in self.sizes]
        if self.temperature == 1.0:
            return capped
        weights = np.array([n ** (1.0 / self.temperature) if n else 0.0 for n in capped])
        share = weights / weights.sum()
        return [int(max(1, round(sum(capped) * p))) if n else 0 for n, p in zip(capped, share)]

    def _epoch_items(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        parts = []
        for task_id, (n, count) in enumerate(zip(self.sizes, self.counts())):
            if count == 0:
                continue
            if self.shuffle or count != n:
                reps = math.ceil(count / n)
                order = np.concatenate([rng.permutation(n) for _ in range(reps)])[:count]
            else:
                order = np.arange(n)
            parts.append(np.stack([np.full(count, task_id), order], axis=1))
        items = np.concatenate(parts)
        if self.shuffle:
            items = items[rng.permutation(len(items))]
        return items

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        total = sum(self.counts())
        steps = total // self.global_batch if self.drop_last else math.ceil(total / self.global_batch)
        return steps

    def _global_order(self) -> np.ndarray:
        items = self._epoch_items()
        needed = len(self) * self.global_batch
        if needed > len(items):  # pad by repeating from the start (documented above)
            reps = math.ceil(needed / len(items))
            items = np.concatenate([items] * reps)
        items = items[:needed]
        return self._grouped(items) if self.group_by_length else items

    def _grouped(self, items: np.ndarray) -> np.ndarray:
        """items regrouped by length inside mega-batches, then whole global batches shuffled."""
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        lengths = np.concatenate(self.lengths)[offsets[items[:, 0]] + items[:, 1]]
        span = self.mega_batch * self.global_batch
        order = []
        for start in range(0, len(items), span):
            chunk = np.arange(start, min(start + span, len(items)))
            order.append(chunk[np.argsort(-lengths[chunk], kind="stable")])
        batches = np.concatenate(order).reshape(-1, self.global_batch)
        rng = np.random.default_rng([self.seed, self.epoch, GROUPING_STREAM])
        return items[batches[rng.permutation(len(batches))].reshape(-1)]

    # --- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = self._global_order()
        steps = len(self)
        start = self.rank * self.batch_size
        for step in range(self.position, steps):
            chunk = order[step * self.global_batch + start: step * self.global_batch + start + self.batch_size]
            self.position = step + 1  # counted before yielding: state_dict after use is exact
            yield [(int(t), int(i)) for t, i in chunk]
        self.epoch += 1
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning, unless it is the current one (resume keeps its place)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0

    # --- resume ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                "sizes": list(self.sizes), "batch_size": self.batch_size,
                "world_size": self.world_size, "temperature": self.temperature, "cap": self.cap,
                "group_by_length": self.group_by_length}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "sizes", "world_size", "temperature", "cap", "group_by_length"):
            if key in state and state[key] != getattr(self, key):
                raise self._cannot_resume(key, state[key])
        position = int(state["position"])
        saved_batch = int(state.get("batch_size", self.batch_size))
        if saved_batch != self.batch_size:
            # Another micro-batch (an out-of-memory re-plan: half the micro-batch, twice the
            # accumulation): the epoch's order does not depend on it without length grouping,
            # so the run continues at the very next example, where the saved one stopped.
            handed_out = position * saved_batch
            if self.group_by_length or handed_out % self.batch_size:
                raise self._cannot_resume("batch_size", saved_batch)
            position = handed_out // self.batch_size
        self.epoch = int(state["epoch"])
        self.position = position

    def _cannot_resume(self, key: str, saved) -> UserError:
        return UserError(f"cannot resume the data order: saved {key}={saved!r} but this run has "
                         f"{getattr(self, key)!r}; resume with the same data and batch settings")
