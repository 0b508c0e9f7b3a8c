"""Splits: seeded, deterministic, disjoint, group-aware, and as the paper assigns them."""

import dataclasses

import pytest

from attempt_dist.data import load_task_splits
from attempt_dist.tasks import TASKS
from attempt_dist.tasks.splits import dev_holdout_size

from helpers_data import read_jsonl
from tests.paths import DATA


def sources(examples):
    return [(e.source, e.target) for e in examples]


@pytest.mark.parametrize("name", ["multirc", "rte", "record", "sst2"])
def test_same_seed_same_split_other_seed_other_split(name):
    a = load_task_splits(name, str(DATA), seed=1)
    b = load_task_splits(name, str(DATA), seed=1)
    c = load_task_splits(name, str(DATA), seed=2)
    for split in ("train", "dev", "test"):
        assert sources(a[split]) == sources(b[split])
    assert sources(a["dev"]) != sources(c["dev"])


def test_small_task_halves_validation_and_keeps_train():
    splits = load_task_splits("rte", str(DATA))
    val = read_jsonl(DATA / "rte" / "validation.jsonl")
    train = read_jsonl(DATA / "rte" / "train.jsonl")
    assert len(splits["train"]) == len(train)
    assert len(splits["dev"]) + len(splits["test"]) == len(val)
    assert len(splits["dev"]) == len(val) // 2
    assert not {id(e) for e in splits["dev"]} & {id(e) for e in splits["test"]}


def test_multirc_questions_never_straddle_dev_and_test():
    for seed in range(5):
        splits = load_task_splits("multirc", str(DATA), seed=seed)
        dev_groups = {e.group for e in splits["dev"]}
        test_groups = {e.group for e in splits["test"]}
        assert dev_groups and test_groups
        assert not dev_groups & test_groups
        val = read_jsonl(DATA / "multirc" / "validation.jsonl")
        # every option of a question is on one side, and nothing is lost
        assert len(splits["dev"]) + len(splits["test"]) == len(val)
        per_question = {}
        for row in val:
            key = f"{row['idx']['paragraph']}-{row['idx']['question']}"
            per_question[key] = per_question.get(key, 0) + 1
        for examples in (splits["dev"], splits["test"]):
            for group in {e.group for e in examples}:
                assert sum(e.group == group for e in examples) == per_question[group]


def test_large_task_holds_out_training_examples_as_dev_and_tests_on_validation():
    splits = load_task_splits("record", str(DATA))
    train_rows = read_jsonl(DATA / "record" / "train.jsonl")
    val_rows = read_jsonl(DATA / "record" / "validation.jsonl")
    assert len(splits["test"]) == len(val_rows)
    assert len(splits["dev"]) == dev_holdout_size(len(train_rows))
    assert len(splits["train"]) + len(splits["dev"]) == len(train_rows)
    assert not {e.group for e in splits["train"]} & {e.group for e in splits["dev"]}
    assert dev_holdout_size(392_702) == 1000 and dev_holdout_size(50) == 10


def test_mnli_dev_is_mismatched_and_test_is_matched():
    splits = load_task_splits("mnli", str(DATA))
    matched = read_jsonl(DATA / "mnli" / "validation_matched.jsonl")
    mismatched = read_jsonl(DATA / "mnli" / "validation_mismatched.jsonl")
    assert [e.source for e in splits["test"]] == [
        f"mnli premise: {r['premise']} hypothesis: {r['hypothesis']}" for r in matched]
    assert [e.source for e in splits["dev"]] == [
        f"mnli premise: {r['premise']} hypothesis: {r['hypothesis']}" for r in mismatched]


def test_yelp_train_cap_and_max_train(monkeypatch):
    full = load_task_splits("yelp", str(DATA))
    monkeypatch.setitem(TASKS, "yelp", dataclasses.replace(TASKS["yelp"], train_cap=7))
    capped = load_task_splits("yelp", str(DATA))
    assert len(capped["train"]) == 7
    assert set(sources(capped["train"])) <= set(sources(full["train"]))
    assert sources(capped["dev"]) == sources(full["dev"])  # dev is held out before the cap
    assert len(load_task_splits("rte", str(DATA), max_train=5)["train"]) == 5
