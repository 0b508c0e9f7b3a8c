"""Local files in every supported format go through the hub path; bad input says what is wrong."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attempt_dist.data import load_task_splits
from attempt_dist.errors import UserError

from helpers_data import copy_task, read_jsonl, write_jsonl
from tests.paths import DATA


def sources(splits):
    return {k: [(e.source, e.target, e.answers) for e in v] for k, v in splits.items()}


def test_parquet_json_and_csv_give_the_same_examples_as_jsonl(tmp_path):
    reference = sources(load_task_splits("rte", str(DATA)))
    for fmt in ("parquet", "json", "csv"):
        folder = tmp_path / fmt / "rte"
        folder.mkdir(parents=True)
        for split in ("train", "validation"):
            rows = read_jsonl(DATA / "rte" / f"{split}.jsonl")
            if fmt == "parquet":
                pq.write_table(pa.Table.from_pylist(rows), folder / f"{split}.parquet")
            elif fmt == "json":
                (folder / f"{split}.json").write_text(json.dumps(rows))
            else:
                import pandas as pd
                pd.DataFrame(rows).to_csv(folder / f"{split}.csv", index=False)
        assert sources(load_task_splits("rte", str(tmp_path / fmt))) == reference, fmt


def test_nested_schema_survives_parquet(tmp_path):
    reference = sources(load_task_splits("multirc", str(DATA)))
    for split in ("train", "validation"):
        rows = read_jsonl(DATA / "multirc" / f"{split}.jsonl")
        (tmp_path / "multirc").mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "multirc" / f"{split}.parquet")
    assert sources(load_task_splits("multirc", str(tmp_path))) == reference


def _mrqa_native(path, dataset, contexts):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"header": {"dataset": dataset, "split": "train"}}) + "\n")
        for context, qas in contexts:
            toks = [[t, context.find(t)] for t in context.split()]
            handle.write(json.dumps({"context": context, "context_tokens": toks, "qas": [
                {"qid": qid, "question": q, "question_tokens": [[w, 0] for w in q.split()],
                 "detected_answers": [{"text": a, "char_spans": [[context.find(a), context.find(a) + len(a) - 1]],
                                       "token_spans": [[0, 0]]}],
                 "answers": [a]} for qid, q, a in qas]}) + "\n")


def test_official_mrqa_jsonl_gz_is_flattened_one_example_per_question(tmp_path):
    contexts = [(f"Ann{i} built the tower in City{i}.",
                 [(f"a{i}", f"Who built the tower in City{i}?", f"Ann{i}"),
                  (f"b{i}", f"Where is the tower of Ann{i}?", f"City{i}")]) for i in range(12)]
    _mrqa_native(tmp_path / "newsqa" / "train.jsonl.gz", "NewsQA", contexts)
    _mrqa_native(tmp_path / "newsqa" / "validation.jsonl.gz", "NewsQA", contexts[:5])
    splits = load_task_splits("newsqa", str(tmp_path))
    assert len(splits["test"]) == 10
    assert len(splits["train"]) + len(splits["dev"]) == 24
    first = splits["test"][0]
    assert first.source == "newsqa question: Who built the tower in City0? context: Ann0 built the tower in City0."
    assert first.answers == ["Ann0"]


def test_mrqa_shared_folder_is_filtered_by_subset(tmp_path):
    rows = read_jsonl(DATA / "nq" / "train.jsonl") + read_jsonl(DATA / "newsqa" / "train.jsonl")
    val = read_jsonl(DATA / "nq" / "validation.jsonl") + read_jsonl(DATA / "newsqa" / "validation.jsonl")
    write_jsonl(tmp_path / "mrqa" / "train.jsonl", rows)
    write_jsonl(tmp_path / "mrqa" / "validation.jsonl", val)
    mixed = load_task_splits("nq", str(tmp_path))
    assert sources(mixed) == sources(load_task_splits("nq", str(DATA)))
    assert all(e.source.startswith("nq ") for e in mixed["train"])


def test_missing_columns_are_named(tmp_path):
    copy_task(DATA, tmp_path, "boolq")
    rows = [{k: v for k, v in r.items() if k != "passage"} for r in read_jsonl(tmp_path / "boolq" / "train.jsonl")]
    write_jsonl(tmp_path / "boolq" / "train.jsonl", rows)
    with pytest.raises(UserError, match=r"train\.jsonl.*missing columns passage needed by task boolq"):
        load_task_splits("boolq", str(tmp_path))


def test_empty_split_says_so(tmp_path):
    copy_task(DATA, tmp_path, "cb")
    (tmp_path / "cb" / "validation.jsonl").write_text("")
    with pytest.raises(UserError, match=r"cb split 'validation' is empty"):
        load_task_splits("cb", str(tmp_path))


def test_malformed_json_line_reports_file_and_line(tmp_path):
    copy_task(DATA, tmp_path, "wic")
    path = tmp_path / "wic" / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[6] = lines[6][:-5]  # cut the closing of line 7
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"wic/train\.jsonl:7: malformed JSON line"):
        load_task_splits("wic", str(tmp_path))


def test_malformed_row_reports_file_and_line(tmp_path):
    copy_task(DATA, tmp_path, "rte")
    rows = read_jsonl(tmp_path / "rte" / "validation.jsonl")
    rows[3]["label"] = -1  # a GLUE test-style unlabelled row
    write_jsonl(tmp_path / "rte" / "validation.jsonl", rows)
    with pytest.raises(UserError, match=r"rte/validation\.jsonl:4: malformed rte row: label -1"):
        load_task_splits("rte", str(tmp_path))


def test_offline_with_nothing_local_names_the_files_and_the_hub_id(tmp_path):
    with pytest.raises(UserError) as err:
        load_task_splits("paws", str(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "paws" / "train.") in message
    assert "google-research-datasets/paws" in message and "labeled_final" in message


def test_too_small_validation_for_a_dev_test_split(tmp_path):
    copy_task(DATA, tmp_path, "copa")
    write_jsonl(tmp_path / "copa" / "validation.jsonl", read_jsonl(tmp_path / "copa" / "validation.jsonl")[:1])
    with pytest.raises(UserError, match=r"copa: the dev split came out empty"):
        load_task_splits("copa", str(tmp_path))


def test_parquet_reads_only_the_task_columns_and_names_all_found_when_one_is_missing(tmp_path, monkeypatch):
    """A large unused column (ReCoRD's entity_spans, MRQA's token lists) is never read: it cost
    ReCoRD's cold build 0.6 GiB as Python dicts. A missing needed column still names every
    column the file has."""
    from attempt_dist.data import files

    read = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda path, columns=None, **kw: read.append(columns) or real(path, columns=columns, **kw))
    (tmp_path / "boolq").mkdir()
    for split in ("train", "validation"):
        rows = [{**r, "unused_blob": "x" * 100} for r in read_jsonl(DATA / "boolq" / f"{split}.jsonl")]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "boolq" / f"{split}.parquet")
    assert sources(load_task_splits("boolq", str(tmp_path))) == sources(load_task_splits("boolq", str(DATA)))
    assert read and all(cols is not None and "unused_blob" not in cols and "passage" in cols for cols in read)
    rows = [{k: v for k, v in r.items() if k != "passage"} for r in read_jsonl(DATA / "boolq" / "train.jsonl")]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "boolq" / "train.parquet")
    with pytest.raises(UserError, match=r"missing columns passage needed by task boolq \(found: question, idx, label\)"):
        load_task_splits("boolq", str(tmp_path))
    rows = files.read_rows(tmp_path / "boolq" / "validation.parquet")  # no task: every column, by index too
    assert len(rows.rows) == len(list(rows.rows)) and rows.rows[-1] == list(rows.rows)[-1]
    with pytest.raises(IndexError):
        rows.rows[len(rows.rows)]
