"""The paper-size data generator: hub schemas as the fixtures have them, row counts from the
hub's, the same bytes for the same seed, and read by the normal loading path."""

import json
import sys

import pyarrow.parquet as pq
import pytest

from attempt_dist.data import load_task_splits
from tests.paths import DATA, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import make_full_size_data as gen  # noqa: E402

SCALE = 0.0005


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    assert gen.main(["--out", str(out), "--scale", str(SCALE), "--seed", "3"]) == 0
    return out


def shape(value):
    """A value's type structure: dict keys and list element shapes, as the hub schema fixes them."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("task", sorted(gen.MAKERS))
def test_rows_have_the_fixture_schema_and_the_scaled_hub_counts(made, task):
    for split, count in gen.ROW_COUNTS[task].items():
        rows = pq.read_table(made / task / f"{split}.parquet").to_pylist()
        assert len(rows) == max(10, round(count * SCALE))
        fixture = json.loads((DATA / task / f"{split}.jsonl").read_text().splitlines()[0])
        assert shape(rows[0]) == shape(fixture), (task, split)
    splits = load_task_splits(task, made)
    assert all(len(examples) > 0 for examples in splits.values())


def test_same_seed_same_bytes_other_seed_other_rows(made, tmp_path):
    gen.main(["--out", str(tmp_path / "again"), "--scale", str(SCALE), "--seed", "3", "--tasks", "record,sst2"])
    gen.main(["--out", str(tmp_path / "other"), "--scale", str(SCALE), "--seed", "4", "--tasks", "record"])
    for task in ("record", "sst2"):
        assert (tmp_path / "again" / task / "train.parquet").read_bytes() == (made / task / "train.parquet").read_bytes()
    assert pq.read_table(tmp_path / "other" / "record" / "train.parquet").to_pylist() != \
        pq.read_table(made / "record" / "train.parquet").to_pylist()


def test_record_spans_point_at_their_entities_and_squad_answers_at_their_context(made):
    for row in pq.read_table(made / "record" / "train.parquet").to_pylist():
        spans = row["entity_spans"]
        for text, start, end in zip(spans["text"], spans["start"], spans["end"]):
            assert row["passage"][start:end] == text
        assert set(row["answers"]) <= set(row["entities"])
    for row in pq.read_table(made / "squad" / "train.parquet").to_pylist():
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"]):
            assert row["context"][start:start + len(text)] == text


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    assert gen.main(["--out", "x", "--tasks", "mnli,nope"]) == 2
    assert gen.main(["--out", "x", "--scale", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 2
