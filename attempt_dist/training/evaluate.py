"""Evaluation by generation: every task scored with its own prompt (task id) and its own metric.

Each task's examples are sorted by input length (longest first, so batches carry little
padding and an out-of-memory shows on the first batch) and dealt round-robin to the ranks;
shards are padded to the same length so every rank runs the same number of `generate` calls
(under ZeRO-3's per-step path ranks all-gather parameters together: a rank that stopped early
would hang the others). Rank 0 collects the predictions, drops the padding duplicates by
example index (which also undoes the sorting) and scores them in the examples' own order.

Given the DeepSpeed engine under ZeRO-3, evaluation gathers every parameter once per call and
generates with the ZeRO-3 hooks removed (distributed.gathered_for_generation) when the whole
parameters fit; otherwise, and for a plain module or ZeRO 0-2, it generates on the module as is.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .. import distributed as dist
from ..tasks import get_task, headline_score, score
from ..tasks.formats import stsb_target

# Default per-rank evaluation batch = this x the training micro-batch: generation keeps no
# activations for backward (training at batch b does, for every layer) and frees each step's
# activations, so twice the batch stays under what training itself needed.
EVAL_BATCH_FACTOR = 2


def default_eval_batch_size(train_batch_size: int) -> int:
    return EVAL_BATCH_FACTOR * train_batch_size


@dataclass
class TaskEvalData:
    task: str
    task_id: int
    examples: list
    features: Sequence[dict]  # a list, or data.Features over (memory-mapped) token arrays


def max_new_tokens(task: str, max_target_length: int, tokenizer) -> int:
    """Tokens to generate for `task`: a QA answer may use the whole target budget; a label-word
    (or STS-B score) task never needs more than its longest possible target plus eos, and each
    further step would cost a whole decoder pass for nothing. (A generation cut there cannot
    become a label: it is longer than every label.)"""
    spec = get_task(task)
    if spec.kind == "qa":
        return max_target_length
    words = spec.label_words if spec.kind == "classification" else [stsb_target(k / 5) for k in range(26)]
    longest = max(len(ids) for ids in tokenizer(list(words), add_special_tokens=False)["input_ids"])
    return min(longest + 1, max_target_length)


def length_order(features: Sequence[dict]) -> list[int]:
    """Example positions, longest input first (ties keep their order)."""
    return sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))


def _shard(n: int, rank: int, world: int) -> list[int]:
    mine = list(range(rank, n, world))
    per_rank = math.ceil(n / world)
    while len(mine) < per_rank:  # pad with repeats; dropped again by index on rank 0
        mine.append(mine[-1] if mine else 0)
    return mine


@torch.no_grad()
def predict(module, data: TaskEvalData, *, tokenizer, collator, batch_size: int, rank: int,
            world: int, max_target_length: int, synced_gpus: bool, with_attention: bool,
            sort_by_length: bool = True, on_batch=None, generated: dict | None = None):
    """(this rank's [(index, prediction, attention weights or None)]); on_batch() after each batch;
    generated: {"tokens", "steps"} gains this call's generated tokens and decoding steps."""
    positions = length_order(data.features) if sort_by_length else list(range(len(data.features)))
    order = [positions[i] for i in _shard(len(positions), rank, world)]
    out = []
    new_tokens = max_new_tokens(data.task, max_target_length, tokenizer)
    device = next(iter(module.parameters())).device
    for start in range(0, len(order), batch_size):
        feats = [data.features[i] for i in order[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in collator(feats).items()}
        outputs = module.generate(batch["input_ids"], batch["attention_mask"],
                                  task_ids=batch["task_ids"], max_new_tokens=new_tokens,
                                  do_sample=False, num_beams=1, synced_gpus=synced_gpus)
        if generated is not None:  # the output starts with the decoder's start token: not generated
            steps = outputs.shape[1] - 1
            generated["steps"] = generated.get("steps", 0) + steps
            generated["tokens"] = generated.get("tokens", 0) + outputs.shape[0] * steps
        texts = tokenizer.batch_decode(outputs, skip_special_tokens=True)
        weights = [None] * len(feats)
        if with_attention:
            _, _, attn = module.encoder_inputs(batch["input_ids"], batch["attention_mask"], batch["task_ids"])
            if attn is not None:
                weights = attn.float().cpu().tolist()
        for f, text, w in zip(feats, texts, weights):
            out.append((f["index"], text.strip(), w))
        if on_batch is not None:
            on_batch()
    return out


def rank_batches(num_examples: int, world: int, batch_size: int) -> int:
    """generate calls of one rank for one task (every rank makes the same number, see _shard)."""
    return math.ceil(math.ceil(num_examples / world) / batch_size) if num_examples else 0


def _is_engine(model) -> bool:
    return hasattr(model, "optimizer") and isinstance(getattr(model, "module", None), torch.nn.Module)


def evaluate(model, tasks: list[TaskEvalData], *, split: str, tokenizer, collator, batch_size: int,
             info, max_target_length: int, synced_gpus: bool, with_attention: bool = False,
             cap_bytes: int | None = None, sort_by_length: bool = True, progress=None) -> dict:
    """{"metrics": {task: {...}}, "score": mean over tasks of each task's headline metric, "predictions": ..., "attention": ...}.

    model: the DeepSpeed engine (under ZeRO-3 the parameters are then gathered once for the
    whole call when they fit under cap_bytes) or a plain module. synced_gpus: what generate
    needs on the per-step path; inside the gathered block generate runs no collective and
    gets False. progress: an attempt_dist.training.progress.RunProgress that shows this rank's batches.
    The same dict on every rank."""
    engine = model if _is_engine(model) else None
    module = model.module if engine is not None else model
    was_training = module.training
    module.eval()
    local, generated = {}, {"tokens": 0, "steps": 0}
    whole = dist.gathered_for_generation(engine, cap_bytes) if engine is not None else contextlib.nullcontext(False)
    if progress is not None:
        progress.eval_start(split, sum(rank_batches(len(d.features), info.world_size, batch_size) for d in tasks))
    with whole as gathered_once:
        for data in tasks:
            local[data.task] = predict(module, data, tokenizer=tokenizer, collator=collator,
                                       batch_size=batch_size, rank=info.rank, world=info.world_size,
                                       max_target_length=max_target_length,
                                       synced_gpus=synced_gpus and not gathered_once,
                                       with_attention=with_attention, sort_by_length=sort_by_length,
                                       on_batch=progress.eval_advance if progress is not None else None,
                                       generated=generated)
    if progress is not None:
        progress.eval_end()
    if was_training:
        module.train()
    gathered = dist.all_gather_object(local)
    result = None
    if info.is_main:
        # generated: rank 0's tokens and decoding steps (its time is what the run record holds)
        result = {"split": split, "metrics": {}, "predictions": {}, "attention": {}, "generated": generated}
        for data in tasks:
            by_index = {}
            for part in gathered:
                for index, text, weights in part[data.task]:
                    by_index.setdefault(index, (text, weights))
            examples = sorted(data.examples, key=lambda e: e.index)
            preds = [by_index[e.index][0] for e in examples]
            result["metrics"][data.task] = score(data.task, preds, examples)
            result["predictions"][data.task] = preds
            if with_attention:
                result["attention"][data.task] = [by_index[e.index][1] for e in examples]
        result["score"] = selection_score(result["metrics"])
    return dist.broadcast_object(result)


def selection_score(metrics: dict[str, dict[str, float]]) -> float:
    """What best-on-dev selection compares: the mean over tasks of each task's headline metric
    (the one the paper reports: CB accuracy, MultiRC F1a, MRQA F1), not of all its metrics."""
    scores = [headline_score(task, values) for task, values in metrics.items()]
    return float(sum(scores) / len(scores))
