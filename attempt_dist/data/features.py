"""Tokenised features and padded batches that carry task ids."""

from __future__ import annotations

from typing import Sequence

import torch

from ..tasks import Example

LABEL_PAD = -100  # ignored by the cross-entropy loss


def tokenize_examples(examples: Sequence[Example], tokenizer, task_id: int,
                      max_source_length: int, max_target_length: int = 128) -> list[dict]:
    """Feature dicts {input_ids, labels, task_id, index}, each sequence ending in eos.

    Inputs are cut to max_source_length tokens including eos (pass the task's max_length);
    targets to max_target_length.
    """
    if not examples:
        return []
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("tokenizer has no eos token")
    sources = _encode(tokenizer, [e.source for e in examples], max_source_length)
    targets = _encode(tokenizer, [e.target for e in examples], max_target_length)
    return [
        {"input_ids": s + [eos], "labels": t + [eos], "task_id": int(task_id), "index": int(e.index)}
        for e, s, t in zip(examples, sources, targets)
    ]


def _encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    if max_length < 2:
        raise ValueError(f"max length {max_length} leaves no room for text and eos")
    encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length - 1)
    return [list(ids) for ids in encoded["input_ids"]]


class Seq2SeqCollator:
    """Pads a list of features into tensors: input_ids, attention_mask, labels (pad -> -100),
    task_ids and indices (long)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        src_len = max(len(f["input_ids"]) for f in features)
        tgt_len = max(len(f["labels"]) for f in features)
        input_ids = torch.full((len(features), src_len), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), src_len), dtype=torch.long)
        labels = torch.full((len(features), tgt_len), LABEL_PAD, dtype=torch.long)
        for row, f in enumerate(features):
            n, m = len(f["input_ids"]), len(f["labels"])
            input_ids[row, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            attention_mask[row, :n] = 1
            labels[row, :m] = torch.tensor(f["labels"], dtype=torch.long)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "task_ids": torch.tensor([f["task_id"] for f in features], dtype=torch.long),
            "indices": torch.tensor([f["index"] for f in features], dtype=torch.long),
        }
