"""Every run says how well it used its device: `sweep status` and `compare` show each done cell's
steady-state tokens/s and MFU from its result.json (issue 17)."""

import json

from attempt_dist import cli
from attempt_dist.atomic_files import read_json, write_json_atomic
from test_plots import make_cell
from test_record import full_record

STEADY = {"warmup_steps": 3, "timed_steps": 10, "step_time_s": 0.5, "step_time_median_s": 0.5,
          "examples_per_s": 64.0, "tokens_per_s": 12345.6, "padding_fraction": 0.1, "model_tflops_per_s": 300.0,
          "mfu": 0.3033, "hfu": 0.3033, "peak_tflops": 989.0}


def _with_steady(run_dir, steady):
    """The cell's result.json as the trainer writes it now, with its steady state (None: too few steps)."""
    path = run_dir / "result.json"
    metrics = read_json(path)["metrics"]
    record = full_record(metrics=metrics, score={"dev": 0.0, "test": 0.0}).to_json()
    record["throughput"]["steady"] = steady
    write_json_atomic(path, record)


def _run(tmp_path):
    run = tmp_path / "run"
    _with_steady(make_cell(run, "t5-3b", "prompt", ["boolq"], 1, [80.0]), STEADY)
    _with_steady(make_cell(run, "t5-3b", "attempt", ["boolq"], 1, [81.0]), {**STEADY, "mfu": None, "hfu": None,
                                                                            "peak_tflops": None, "tokens_per_s": 99.0})
    _with_steady(make_cell(run, "t5-3b", "adapter", ["boolq"], 1, [79.0]), None)  # too short for a steady state
    make_cell(run, "t5-3b", "finetune", ["boolq"], 1, status="oom")
    return run


def test_sweep_status_shows_tokens_per_s_and_mfu(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path)
    assert cli.main(["sweep", "status", str(run), "--json"]) == 0  # "does not fit" (oom) is a result
    cells = {c["name"]: c["speed"] for c in json.loads(capsys.readouterr().out)["cells"]}
    assert cells["t5-3b__prompt__boolq__s1"] == {"tokens_per_s": 12345.6, "examples_per_s": 64.0, "mfu": 0.3033}
    assert cells["t5-3b__adapter__boolq__s1"] is None and cells["t5-3b__finetune__boolq__s1"] is None
    monkeypatch.setenv("COLUMNS", "400")
    assert cli.main(["sweep", "status", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "tokens/s" in line)
    assert "MFU" in header
    row = next(line for line in lines if "__prompt__" in line)
    assert "12,346" in row and "30.3%" in row
    row = next(line for line in lines if "__attempt__" in line)
    assert "99" in row and "%" not in row  # no known peak (a CPU run): no MFU


def test_compare_lists_each_runs_speed(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path)
    assert cli.main(["compare", str(run), "--json"]) == 0
    speed = {row["method"]: row for row in json.loads(capsys.readouterr().out)["speed"]}
    assert set(speed) == {"prompt", "attempt"}  # no steady state, or no run: no row
    assert speed["prompt"]["mfu"] == 0.3033 and speed["prompt"]["tokens_per_s"] == 12345.6
    assert speed["prompt"]["run"] == "cells/t5-3b__prompt__boolq__s1/run"
    monkeypatch.setenv("COLUMNS", "400")
    assert cli.main(["compare", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Training speed" in out
    row = next(line for line in out.splitlines() if "t5-3b__prompt" in line)
    assert "12,346" in row and "30.3%" in row and "64" in row
