"""The toy task family: generated the same way every time, sized as documented, and each target
answerable by its designed source skill (checked by computing the answer a second way)."""

import pytest

from attempt_dist.data import load_task_splits
from attempt_dist.tasks import score
from attempt_dist.tasks.toy import CITIES, PEOPLE, RELATED_SOURCE, SOURCES, TARGETS, generate_rows


def test_rows_are_the_same_on_every_call_and_differ_by_split():
    assert generate_rows("toy_reverse", "train", 50) == generate_rows("toy_reverse", "train", 50)
    assert generate_rows("toy_reverse", "train", 50) != generate_rows("toy_reverse", "test", 50)
    # A pinned row: a change to the generator changes every run's data, so it must be deliberate.
    assert generate_rows("toy_sort", "train", 1)[0] == {"text": "6 9 0 2 7", "answer": "0 2 6 7 9", "idx": 0}


def test_splits_have_the_documented_sizes_and_the_task_prefix():
    splits = load_task_splits("toy_min", None)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2000, "dev": 200, "test": 200}
    assert splits["dev"][0].source.startswith("toy_min digits: ")


def test_each_target_is_one_step_from_its_source_skill():
    # toy_last = the first word of toy_reverse's answer on the same input
    for row in generate_rows("toy_last", "train", 100):
        assert row["answer"] == " ".join(reversed(row["text"].split())).split()[0]
    # toy_min = the first digit of toy_sort's answer
    for row in generate_rows("toy_min", "train", 100):
        assert row["answer"] == " ".join(sorted(row["text"].split())).split()[0]
    # toy_person = the word toy_category calls a person (label 1)
    for row in generate_rows("toy_person", "train", 100):
        a, b = row["text"].split()
        assert {a, b} - {row["answer"]} <= set(CITIES) and row["answer"] in PEOPLE
    labels = [r["label"] for r in generate_rows("toy_category", "train", 200)]
    assert 60 < sum(labels) < 140  # both classes, roughly balanced
    assert set(RELATED_SOURCE) == set(TARGETS) and RELATED_SOURCE["toy_parity"] is None
    assert {s for s in RELATED_SOURCE.values() if s} == set(SOURCES)


@pytest.mark.parametrize("task, gold_wins", [("toy_last", 100.0), ("toy_parity", 100.0)])
def test_targets_score_through_the_registry_metrics(task, gold_wins):
    dev = load_task_splits(task, None)["dev"]
    assert score(task, [e.target for e in dev], dev)[TASKS_HEADLINE[task]] == gold_wins
    assert score(task, ["nonsense"] * len(dev), dev)[TASKS_HEADLINE[task]] == 0.0


TASKS_HEADLINE = {"toy_last": "em", "toy_parity": "accuracy"}
