"""One real sweep: examples/sweeps/tiny.yaml cut to one ATTEMPT cell, with the real trainer and
pipeline on t5-tiny and the fixture data, through submitit's LocalExecutor: the library stage
(source prompts -> prior) runs first, the cell reads it, the plot reads the attention files."""

import csv
import json
import os
from pathlib import Path

import pytest
import yaml

from attempt_dist import cli
from attempt_dist.plots import plot_run
from attempt_dist.atomic_files import read_json
from attempt_dist.finished.record import read_record
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from tests.paths import REPO


@pytest.mark.slow
def test_tiny_sweep_with_real_trainer_and_pipeline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    source = REPO / "examples/sweeps/tiny.yaml"
    raw = yaml.safe_load(source.read_text())
    raw["grid"].update(models=["t5-tiny"], methods=["attempt"], tasks=["boolq"])
    raw["libraries"]["tiny"]["max_steps"] = 2
    raw["train"]["max_steps"] = 2
    sweep = parse_sweep(raw, source=source)
    run = tmp_path / "run"
    assert run_sweep(sweep, run) == 0, list((run / "logs").glob("*/*.err"))
    (state,) = collect_states(run)
    assert state.status == "done"
    cell = run / "cells" / state.name / "run"
    record = read_json(cell / "result.json")
    assert record["status"] == "completed" and "boolq" in record["metrics"]["test"]
    library = Path(record["config"]["source_prompts"])
    assert sorted(read_json(library / "library.json")["prompts"]) == ["mnli", "sst2"]
    assert Path(record["config"]["prior"]).is_file()
    assert run_sweep(sweep, run) == 0  # second launch: nothing to do, the result stays
    assert read_json(cell / "result.json") == record

    plot_run(run)
    with open(run / "figures" / "fig5_attention.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["prompt"] for r in rows} >= {"mnli", "sst2", "target"}

    # compare reads the finished sweep through the typed record: our BoolQ cell (the paper's
    # tables are T5-base, so a t5-tiny cell has no paper value beside it)
    assert read_record(cell / "result.json").metrics == record["metrics"]
    capsys.readouterr()  # what the launches printed
    assert cli.main(["compare", str(run), "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    boolq = next(c for c in cells if c["column"] == "boolq")
    assert (boolq["row"], boolq["model"], boolq["paper"], boolq["delta"]) == ("ATTEMPT-ST", "t5-tiny", None, None)
    assert boolq["ours"] == pytest.approx(record["metrics"]["test"]["boolq"]["accuracy"])
