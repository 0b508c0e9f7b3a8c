"""The typed run record: what train writes reads back field for field; anything unreadable is
one RecordError naming the file and the field; schema-1 records still read."""

import json
import logging

import pytest

from attempt_dist.atomic_files import write_json_atomic
from attempt_dist.finished.record import (SCHEMA_VERSION, Best, DeepSpeedUse, EvalPoint, MemoryUse, ParamCounts, RecordError,
                                 RunFailure, RunResult, Throughput, read_record)
from attempt_dist.sweep.state import run_state


def full_record(**changes) -> RunResult:
    record = RunResult(
        status="completed", config={"model": "t5-base", "method": "attempt", "tasks": ["cb"], "rank": 100},
        metrics={"dev": {"cb": {"accuracy": 75.0, "f1_macro": 60.0}}, "test": {"cb": {"accuracy": 80.0, "f1_macro": 70.0}}},
        score={"dev": 75.0, "test": 80.0}, best=Best(step=4, epoch=2.0, dev_score=75.0),
        history=[EvalPoint(step=2, epoch=1.0, score=50.0, metrics={"cb": {"accuracy": 50.0, "f1_macro": 40.0}}),
                 EvalPoint(step=4, epoch=2.0, score=75.0, metrics={"cb": {"accuracy": 75.0, "f1_macro": 60.0}})],
        train_loss=[2.5, 1.25], params=ParamCounts(trainable=232_000, trainable_per_task=232_000.0, total=222_903_552),
        learning_rates={"prompts": 0.3, "gate": 0.1}, warmup_steps=0, steps=4,
        memory=MemoryUse(peak_allocated_bytes=2**30, device_peak_bytes=None, cap_bytes=24 * 2**30),
        throughput=Throughput(train_examples_per_s=12.5, steps=4, examples=50,
                              eval={"dev": {"seconds": 1.5, "calls": 3}}),
        wall_time_s=9.0, world_size=2, deepspeed=DeepSpeedUse(stage=2, config="zero2_offload"), plan=None,
        versions={"torch": "2.13.0"}, git_revision=None)
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_a_written_record_reads_back_field_for_field(tmp_path):
    record = full_record()
    path = write_json_atomic(tmp_path / "result.json", record.to_json())
    assert json.loads(path.read_text())["schema"] == SCHEMA_VERSION == 2
    assert read_record(path) == record
    failure = RunFailure(status="oom", reason="t5-3b does not fit", config={"model": "t5-3b"})
    assert read_record(write_json_atomic(tmp_path / "failure.json", failure.to_json())) == failure


def _write(tmp_path, payload, name="result.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: r.update(history=[{**r["history"][0], "step": "2"}]), "field history[0].step should be an integer"),
    (lambda r: r["best"].update(dev_score=None), "field 'best.dev_score' should be a number, got null"),
    (lambda r: r.update(train_loss=[1.0, True]), "field train_loss[1] should be a number, got boolean"),
    (lambda r: r["throughput"].pop("examples"), "required field 'throughput.examples' is missing"),
    (lambda r: r.pop("score"), "required field 'score' is missing from this schema 2 record"),
    (lambda r: r["deepspeed"].update(stage=2.0), "field 'deepspeed.stage' should be an integer, got number 2.0"),
    (lambda r: r.update(status="done"), "status 'done', expected 'completed'"),
    (lambda r: r.update(schema=3), "schema 3, this attempt-dist reads run records of schema 1 or 2"),
    (lambda r: r.update(schema="2"), "field 'schema' should be an integer, got string"),
])
def test_a_field_of_the_wrong_type_names_the_file_and_the_field(tmp_path, edit, fragment):
    record = full_record().to_json()
    edit(record)
    path = _write(tmp_path, record)
    with pytest.raises(RecordError) as err:
        read_record(path)
    assert str(err.value).startswith(f"{path}: ") and fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, fragment", [
    ('{"schema": 2, "status": "compl', "not valid JSON"), ("[]", "holds a JSON list"), ("", "not valid JSON"),
])
def test_truncated_or_non_object_files_are_record_errors(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(RecordError, match=fragment) as err:
        read_record(path)
    assert str(path) in str(err.value)


def test_schema_1_records_still_read(tmp_path):
    # What train wrote before schema 2: no score, history, train_loss, learning_rates, ...
    path = _write(tmp_path, {"schema": 1, "status": "completed", "config": {"model": "t5-base"},
                             "metrics": {"test": {"rte": {"accuracy": 70.0}}},
                             "params": {"trainable": 77_000, "trainable_per_task": 77_000.0, "total": 1},
                             "memory": {"peak_allocated_bytes": 5}})
    record = read_record(path)
    assert record.schema == 1 and record.metrics["test"]["rte"]["accuracy"] == 70.0
    assert record.params.trainable == 77_000 and record.memory.peak_allocated_bytes == 5
    assert record.score is None and record.history is None and record.memory.cap_bytes is None
    with pytest.raises(RecordError, match="required field 'metrics' is missing from this schema 1 record"):
        read_record(_write(tmp_path, {"schema": 1, "status": "completed", "config": {}}))
    failure = read_record(_write(tmp_path, {"schema": 1, "status": "failed", "reason": "x", "config": {}}, "failure.json"))
    assert failure == RunFailure(status="failed", reason="x", config={}, schema=1)


def test_sweep_status_counts_a_corrupt_record_as_failed_and_names_it(tmp_path, caplog):
    run_dir = tmp_path / "cells" / "c1" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text('{"schema": 2, "status": "comp')
    with caplog.at_level(logging.WARNING, logger="attempt_dist.sweep"):
        state = run_state(run_dir, run_dir.parent / "job.json")
    assert state.status == "failed" and str(run_dir / "result.json") in state.detail
    assert any(str(run_dir / "result.json") in message for message in caplog.messages)
    (run_dir / "result.json").unlink()
    write_json_atomic(run_dir / "failure.json", RunFailure(status="oom", reason="does not fit", config={}).to_json())
    assert (run_state(run_dir, run_dir.parent / "job.json").status,
            run_state(run_dir, run_dir.parent / "job.json").detail) == ("oom", "does not fit")


def test_steady_throughput_reads_back_and_an_earlier_schema_2_record_without_it_reads_none(tmp_path):
    from attempt_dist.finished.record import SteadyThroughput

    steady = SteadyThroughput(warmup_steps=3, timed_steps=10, step_time_s=0.5, step_time_median_s=0.49,
                              examples_per_s=64.0, tokens_per_s=14000.0, padding_fraction=0.25,
                              model_tflops_per_s=300.0, mfu=0.303, hfu=0.303, peak_tflops=989.0)
    record = full_record()
    record.throughput.steady = steady
    path = write_json_atomic(tmp_path / "result.json", record.to_json())
    assert read_record(path).throughput.steady == steady
    older = full_record().to_json()
    del older["throughput"]["steady"]  # written before the field existed
    assert read_record(_write(tmp_path, older)).throughput.steady is None
    broken = record.to_json()
    del broken["throughput"]["steady"]["mfu"]
    with pytest.raises(RecordError, match="'throughput.steady.mfu' is missing"):
        read_record(_write(tmp_path, broken))
