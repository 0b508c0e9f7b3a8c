"""A run's data: each task tokenised (through the feature cache), its dev and test sets for
evaluation, and the multi-task sampler that draws this rank's training batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import (MultiTaskSampler, Seq2SeqCollator, cached_tokenize, default_cache_dir, load_task_splits,
                   load_tokenizer)
from .evaluate import TaskEvalData
from .model_setup import tokenizer_source
from .tasks import get_task


@dataclass
class RunData:
    tokenizer: Any
    collator: Seq2SeqCollator
    train_features: list[list[dict]]
    """Per task (task id = index): its tokenised training examples."""
    eval_data: dict[str, list[TaskEvalData]]
    """"dev" and "test": one entry per task."""
    sampler: MultiTaskSampler


def load_run_data(cfg, rank: int, world_size: int) -> RunData:
    tokenizer = load_tokenizer(tokenizer_source(cfg))
    train_features, eval_data = [], {"dev": [], "test": []}
    cache = None if cfg.no_data_cache else (Path(cfg.cache_dir) / "features" if cfg.cache_dir else default_cache_dir())
    for task_id, task in enumerate(cfg.tasks):
        splits = load_task_splits(task, cfg.data_dir, seed=cfg.data_seed, max_train=cfg.max_train_examples)
        max_len = cfg.max_length or get_task(task).max_length
        feats = lambda exs: cached_tokenize(exs, tokenizer, task_id, max_len,  # noqa: E731
                                            cfg.max_target_length, cache)
        train_features.append(feats(splits["train"]))
        for split in ("dev", "test"):
            examples = splits[split][: cfg.max_eval_examples] if cfg.max_eval_examples else splits[split]
            eval_data[split].append(TaskEvalData(task, task_id, examples, feats(examples)))
    sampler = MultiTaskSampler([len(f) for f in train_features], cfg.batch_size, rank, world_size, cfg.seed,
                               temperature=cfg.temperature_sampling, group_by_length=cfg.group_by_length,
                               lengths=[[len(x["input_ids"]) for x in f] for f in train_features]
                               if cfg.group_by_length else None)
    return RunData(tokenizer, Seq2SeqCollator(tokenizer.pad_token_id), train_features, eval_data, sampler)
