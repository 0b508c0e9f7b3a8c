"""Tokenisation (eos, truncation) and collation (padding, -100 labels, task ids)."""

import torch

from attempt_dist.data import MultiTaskSampler, Seq2SeqCollator, load_task_splits, load_tokenizer, tokenize_examples
from attempt_dist.tasks import Example
from tests.paths import DATA


def test_tokenize_appends_eos_and_truncates():
    tok = load_tokenizer("t5-tiny")
    long = Example("rte", "rte sentence1: " + "word " * 50, "entailment", ["entailment"], None, 4)
    short = Example("rte", "rte sentence1: A.", "not_entailment", ["not_entailment"], None, 5)
    feats = tokenize_examples([long, short], tok, task_id=3, max_source_length=16, max_target_length=8)
    assert len(feats[0]["input_ids"]) == 16 and feats[0]["input_ids"][-1] == tok.eos_token_id
    assert feats[1]["input_ids"][-1] == tok.eos_token_id and len(feats[1]["input_ids"]) < 16
    assert feats[1]["labels"][-1] == tok.eos_token_id
    assert tok.decode(feats[1]["labels"], skip_special_tokens=True) == "not_entailment"
    assert [f["task_id"] for f in feats] == [3, 3] and [f["index"] for f in feats] == [4, 5]


def test_mixed_task_batch_carries_the_right_task_ids():
    tok = load_tokenizer("t5-tiny")
    names = ["rte", "stsb", "squad"]
    trains = [load_task_splits(name, str(DATA))["train"] for name in names]
    features = [tokenize_examples(train, tok, task_id, 64) for task_id, train in enumerate(trains)]
    sampler = MultiTaskSampler([len(f) for f in features], 16, 0, 1, seed=0)
    collate = Seq2SeqCollator(tok.pad_token_id)
    mixed = 0
    for batch_items in sampler:
        batch = collate([features[t][i] for t, i in batch_items])
        assert batch["task_ids"].tolist() == [t for t, _ in batch_items]
        assert batch["indices"].tolist() == [i for _, i in batch_items]
        mixed += len(set(batch["task_ids"].tolist())) > 1
        for row, (t, i) in enumerate(batch_items):
            labels = [x for x in batch["labels"][row].tolist() if x != -100]
            source = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
            assert tok.decode(labels, skip_special_tokens=True) == trains[t][i].target
            assert tok.decode(source, skip_special_tokens=True).startswith(names[t] + " ")
    assert mixed > 0


def test_collator_pads_inputs_with_pad_and_labels_with_minus_100():
    feats = [{"input_ids": [5, 6, 1], "labels": [7, 1], "task_id": 0, "index": 0},
             {"input_ids": [5, 1], "labels": [8, 9, 10, 1], "task_id": 2, "index": 9}]
    b = Seq2SeqCollator(pad_token_id=0)(feats)
    assert b["input_ids"].tolist() == [[5, 6, 1], [5, 1, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert b["labels"].tolist() == [[7, 1, -100, -100], [8, 9, 10, 1]]
    assert b["task_ids"].dtype == torch.long and b["task_ids"].tolist() == [0, 2]
    assert b["indices"].tolist() == [0, 9]
