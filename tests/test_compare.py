"""Our tables beside the paper's: Table 2-3 row labels for every baseline, `attempt-dist compare`
(rich table and --json) and the *_vs_paper files `attempt-dist plot` writes."""

import csv
import json

import pytest

from attempt_dist import cli
from attempt_dist.plots import plot_run
from test_plots import make_cell


def _spot(run, tasks, seed, mode, scores):
    return make_cell(run, "t5-base", "spot", tasks, seed, scores, per_task=77e3 if len(tasks) == 1 else 19e3,
                     train={"spot_mode": mode})


@pytest.fixture
def table2_run(tmp_path):
    run = tmp_path / "run"
    for i, task in enumerate(("wnli", "stsb", "mrpc", "rte", "multirc", "boolq", "wic", "wsc", "cb")):
        make_cell(run, "t5-base", "attempt", [task], 1, [70.0 + i], per_task=232e3)
    _spot(run, ["cb"], 1, "generic", [50.0])
    _spot(run, ["cb"], 2, "targeted", [70.0])
    _spot(run, ["rte", "cb"], 1, "generic", [46.0, 47.0])
    _spot(run, ["rte", "cb"], 2, "targeted", [60.0, 61.0])
    make_cell(run, "t5-base", "finetune", ["rte", "cb"], 1, [75.0, 71.0], per_task=110e6)
    make_cell(run, "t5-base", "adapter", ["rte", "cb"], 1, [70.0, 78.0], per_task=450e3)
    return run


def test_table2_has_a_row_per_spot_variant_and_the_multitask_baselines(table2_run):
    plot_run(table2_run, figures=("tables",))
    with open(table2_run / "figures/table2_t5-base.csv") as handle:
        rows = [(r["section"], r["method"]) for r in csv.DictReader(handle)]
    assert rows == [("Single-task training", "SPoT-g"), ("Single-task training", "SPoT-t"),
                    ("Single-task training", "ATTEMPT-ST"),
                    ("Multi-task training", "FT-MT"), ("Multi-task training", "Adapter-MT"),
                    ("Multi-task training", "SPoT-g MT"), ("Multi-task training", "SPoT-t MT")]


def test_compare_json_puts_the_papers_value_and_delta_beside_ours(table2_run, capsys):
    assert cli.main(["compare", str(table2_run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cells = {(c["section"], c["row"], c["column"]): (c["ours"], c["paper"], c["delta"]) for c in out["cells"]}
    assert cells[("single", "SPoT-g", "cb")] == (50.0, 46.42, pytest.approx(3.58))
    assert cells[("single", "SPoT-t", "cb")] == (70.0, 71.43, pytest.approx(-1.43))
    assert cells[("multi", "SPoT-g MT", "rte")] == (46.0, 46.04, pytest.approx(-0.04))
    assert cells[("multi", "FT-MT", "cb")] == (71.0, 71.42, pytest.approx(-0.42))
    assert cells[("multi", "Adapter-MT", "params_per_task")] == (450e3, 450e3, 0.0)
    assert cells[("single", "ATTEMPT-ST", "wsc")] == (77.0, 53.84, pytest.approx(23.16))
    # ATTEMPT-ST has all nine Table 2 tasks: its average (70 + 4 = 74) beside the paper's 74.06
    assert cells[("single", "ATTEMPT-ST", "avg_wnli")] == (74.0, 74.06, pytest.approx(-0.06))
    # the paper has no SPoT-t MT row in Table 2: ours alone; an incomplete group has no average
    assert cells[("multi", "SPoT-t MT", "cb")] == (61.0, None, None)
    assert ("multi", "FT-MT", "avg_wnli") not in cells and ("multi", "FT-MT", "avg_rte") not in cells


def test_compare_prints_ours_the_papers_and_the_delta(table2_run, capsys):
    assert cli.main(["compare", str(table2_run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if "SPoT-t " in line and "CB" in line)
    assert ["70.00", "71.43", "-1.43"] == [part for part in row.replace("│", " ").split() if part[-3:-2] == "."]


def test_plot_writes_each_table_beside_the_papers(table2_run):
    plot_run(table2_run, figures=("tables",))
    md = (table2_run / "figures/table2_t5-base_vs_paper.md").read_text()
    assert "| SPoT-t | 77k (77k, 0) |" in md and "70.00 (71.43, -1.43)" in md
    assert "| SPoT-t MT (MT) |" not in md and "| SPoT-t MT |" in md
    with open(table2_run / "figures/table2_t5-base_vs_paper.csv") as handle:
        rows = {(r["section"], r["method"], r["column"]): r for r in csv.DictReader(handle)}
    assert float(rows[("multi", "SPoT-g MT", "cb")]["paper"]) == 46.42
    assert float(rows[("multi", "SPoT-g MT", "cb")]["delta"]) == pytest.approx(0.58)


def test_compare_without_records_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to compare" in err[0]


def test_compare_names_an_unreadable_record(table2_run, capsys):
    path = next(table2_run.rglob("result.json"))
    path.write_text("{")
    assert cli.main(["compare", str(table2_run)]) == 0  # the readable cells are still compared
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "counted as a failed run" in err[0]
    assert "Traceback" not in err[0]


def test_compare_matches_table4_rows_in_both_blocks(tmp_path, capsys):
    run = tmp_path / "run"
    make_cell(run, "t5-base", "attempt-no_prior", ["boolq"], 1, [77.0], method="attempt", train={"no_prior": True})
    make_cell(run, "t5-base", "attempt-no_prior", ["boolq", "winogrande"], 1, [78.0, 57.0], method="attempt",
              train={"no_prior": True})
    assert cli.main(["compare", str(run), "--json"]) == 0
    cells = {(c["table"], c["section"], c["row"], c["column"]): (c["paper"], c["delta"])
             for c in json.loads(capsys.readouterr().out)["cells"]}
    assert cells[("table4", "single", "no prior transfer", "boolq")] == (77.03, pytest.approx(-0.03))
    assert cells[("table4", "multi", "no prior transfer", "winogrande")] == (56.98, pytest.approx(0.02))
    assert ("table4", "multi", "no prior transfer", "avg_boolq") not in cells  # Table 4 has no Avg.
