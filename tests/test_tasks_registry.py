"""The registry lists the paper's 25 tasks with the hub ids, lengths and metrics it promises,
and every fixture loads offline through the same path as hub data."""

import json

import pytest

from attempt_dist.cli import main as cli_main
from attempt_dist.data import load_task_splits
from attempt_dist.errors import UserError
from attempt_dist.tasks import PAPER_TASKS, SOURCE_TASKS, TARGET_TASKS, TASKS, get_task
from attempt_dist.tasks.formats import FORMATTERS

from helpers_data import read_jsonl
from tests.paths import DATA

# From docs/hub_schemas.md, written out independently of the registry.
HUB = {
    "mnli": ("nyu-mll/glue", "mnli"), "sst2": ("nyu-mll/glue", "sst2"), "qqp": ("nyu-mll/glue", "qqp"),
    "qnli": ("nyu-mll/glue", "qnli"), "squad": ("rajpurkar/squad", "plain_text"),
    "record": ("aps/super_glue", "record"), "wnli": ("nyu-mll/glue", "wnli"),
    "stsb": ("nyu-mll/glue", "stsb"), "mrpc": ("nyu-mll/glue", "mrpc"), "rte": ("nyu-mll/glue", "rte"),
    "cola": ("nyu-mll/glue", "cola"), "multirc": ("aps/super_glue", "multirc"),
    "boolq": ("aps/super_glue", "boolq"), "wic": ("aps/super_glue", "wic"),
    "wsc": ("aps/super_glue", "wsc.fixed"), "cb": ("aps/super_glue", "cb"),
    "copa": ("aps/super_glue", "copa"), "nq": ("mrqa-workshop/mrqa", "plain_text"),
    "hotpotqa": ("mrqa-workshop/mrqa", "plain_text"), "searchqa": ("mrqa-workshop/mrqa", "plain_text"),
    "newsqa": ("mrqa-workshop/mrqa", "plain_text"), "winogrande": ("allenai/winogrande", "winogrande_xl"),
    "yelp": ("fancyzhx/yelp_polarity", "plain_text"), "scitail": ("allenai/scitail", "tsv_format"),
    "paws": ("google-research-datasets/paws", "labeled_final"),
}
QA = {"squad", "record", "nq", "hotpotqa", "searchqa", "newsqa"}


def test_the_25_tasks_and_their_hub_ids():
    assert set(PAPER_TASKS) == set(HUB)
    assert set(TASKS) - set(HUB) == {"toy_reverse", "toy_sort", "toy_category", "toy_last", "toy_min",
                                     "toy_person", "toy_parity"}
    assert len(SOURCE_TASKS) == 6 and len(TARGET_TASKS) == 19
    assert set(SOURCE_TASKS) == {"mnli", "sst2", "qqp", "qnli", "squad", "record"}
    for name, (hub_id, config) in HUB.items():
        assert (TASKS[name].hub_id, TASKS[name].hub_config) == (hub_id, config), name
    assert {t.mrqa_subset for t in TASKS.values()} - {None} == {
        "NaturalQuestionsShort", "HotpotQA", "SearchQA", "NewsQA"}


def test_kinds_lengths_groups_and_caps_follow_the_paper():
    for name, task in ((n, TASKS[n]) for n in PAPER_TASKS):
        assert task.kind == ("qa" if name in QA else "regression" if name == "stsb" else "classification")
        expected_len = 512 if name in QA else 348 if name == "multirc" else 256
        assert task.max_length == expected_len, name
        assert task.formatter in FORMATTERS
        assert task.metrics
    assert TASKS["yelp"].train_cap == 100_000
    assert {TASKS[n].group for n in ("nq", "hotpotqa", "searchqa", "newsqa")} == {"mrqa"}
    assert TASKS["multirc"].group == "multirc"  # trained apart (Appendix B.6)
    assert TASKS["mnli"].hub_splits == {"train": "train", "dev": "validation_mismatched",
                                        "test": "validation_matched"}
    assert TASKS["cola"].metrics == ("matthews",)
    assert TASKS["stsb"].metrics == ("pearson", "spearman")
    assert TASKS["multirc"].metrics == ("f1a", "em")
    assert "f1_macro" in TASKS["cb"].metrics


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(UserError) as err:
        get_task("mnli2")
    message = str(err.value)
    assert "mnli2" in message and all(name in message for name in TASKS)


@pytest.mark.parametrize("name", sorted(PAPER_TASKS))
def test_every_fixture_loads_offline_with_nonempty_splits(name):
    splits = load_task_splits(name, str(DATA))
    assert set(splits) == {"train", "dev", "test"}
    for split, examples in splits.items():
        assert len(examples) >= 5, (name, split)
        assert [e.index for e in examples] == list(range(len(examples)))
        assert all(e.task == name and e.source.startswith(name + " ") and e.target for e in examples)
        assert all(e.target in e.answers for e in examples)


@pytest.mark.parametrize("name", sorted(PAPER_TASKS))
def test_fixture_rows_carry_the_hub_columns(name):
    task = TASKS[name]
    files = sorted((DATA / name).glob("*.jsonl"))
    assert {f.stem for f in files} == set(task.hub_splits.values())
    for f in files:
        for row in read_jsonl(f):
            assert set(task.columns) <= set(row), (f, set(task.columns) - set(row))
            if task.hub_id in ("nyu-mll/glue", "aps/super_glue"):
                assert "idx" in row
            if "label" in row and name not in ("scitail", "stsb"):
                assert isinstance(row["label"], int) and row["label"] >= 0


def test_cli_lists_every_task_as_json(capsys):
    assert cli_main(["tasks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(TASKS)
    by_name = {r["name"]: r for r in rows}
    assert by_name["cola"]["metrics"] == ["matthews"]
    assert by_name["nq"]["mrqa_subset"] == "NaturalQuestionsShort"
    assert by_name["multirc"]["max_length"] == 348


def test_cli_table_and_role_filter(capsys):
    assert cli_main(["tasks", "--role", "source"]) == 0
    out = capsys.readouterr().out
    # the paper's 6 sources and the toy family's 3
    assert "9 tasks" in out and "record" in out and "boolq" not in out
