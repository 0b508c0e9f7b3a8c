"""A run's data: each task tokenised (through the feature cache), its dev and test sets for
evaluation, and the multi-task sampler that draws this rank's training batches."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import MultiTaskSampler, Seq2SeqCollator, default_cache_dir, load_tokenizer, task_features
from .evaluate import TaskEvalData
from ..model.build import tokenizer_source
from ..tasks import get_task

log = logging.getLogger("attempt_dist.train")


@dataclass
class RunData:
    tokenizer: Any
    collator: Seq2SeqCollator
    train_features: list
    """Per task (task id = index): its tokenised training examples (data.Features, memory-mapped)."""
    eval_data: dict[str, list[TaskEvalData]]
    """"dev" and "test": one entry per task."""
    sampler: MultiTaskSampler
    fingerprint: dict[str, str]
    """Task -> its feature-cache key: a digest of its data files (or hub examples), the code that
    formats and tokenises them, the tokenizer and limits. A checkpoint records it; resume checks it."""


def load_run_data(cfg, rank: int, world_size: int) -> RunData:
    tokenizer = load_tokenizer(tokenizer_source(cfg))
    train_features, eval_data, fingerprint = [], {"dev": [], "test": []}, {}
    cache = None if cfg.no_data_cache else (Path(cfg.cache_dir) / "features" if cfg.cache_dir else default_cache_dir())
    started, built = time.perf_counter(), 0
    for task_id, task in enumerate(cfg.tasks):
        max_len = cfg.max_length or get_task(task).max_length
        # Built once per node (the other ranks wait), then memory-mapped by every rank.
        data = task_features(task, task_id, cfg.data_dir, cfg.data_seed, cfg.max_train_examples,
                             tokenizer, max_len, cfg.max_target_length, cache)
        train_features.append(data.train)
        fingerprint[task] = data.key
        built += data.built
        for split, examples in (("dev", data.dev_examples), ("test", data.test_examples)):
            features = getattr(data, split).head(cfg.max_eval_examples)
            eval_data[split].append(TaskEvalData(task, task_id, examples[:len(features)], features))
    log.info("data ready in %.1f s: %d training examples over %d tasks, %d tokenised by this rank",
             time.perf_counter() - started, sum(len(f) for f in train_features), len(cfg.tasks), built)
    sampler = MultiTaskSampler([len(f) for f in train_features], cfg.batch_size, rank, world_size, cfg.seed,
                               temperature=cfg.temperature_sampling, group_by_length=cfg.group_by_length,
                               lengths=[f.lengths for f in train_features] if cfg.group_by_length else None)
    return RunData(tokenizer, Seq2SeqCollator(tokenizer.pad_token_id), train_features, eval_data, sampler,
                   fingerprint)
