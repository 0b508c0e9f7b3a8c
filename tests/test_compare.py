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


# --- a folder whose scores are the paper's own values (issue 19's "done when") ----------------

_VARIANT = {"FT": "finetune", "Adapter": "adapter", "BitFit": "bitfit", "PT": "prompt", "SPoT-g": "spot-g",
            "SPoT-t": "spot-t", "ATTEMPT-ST": "attempt", "FT-MT": "finetune", "Adapter-MT": "adapter",
            "SPoT-g MT": "spot-g", "SPoT-t MT": "spot-t", "ATTEMPT-MT": "attempt"}
_GROUPS = {"table2": [("wnli", "stsb", "mrpc", "rte"), ("boolq", "wic", "wsc", "cb")],
           "table3": [("nq", "hotpotqa", "searchqa", "newsqa"), ("winogrande", "yelp", "scitail", "paws")]}


def _paper_cells(table):
    from attempt_dist.paper import paper_values

    cells = {}
    for v in paper_values():
        if v.table == table:
            cells.setdefault((v.section, v.row), {})[v.column] = v.value
    return cells


def _paper_folder(run, table):
    """Every Table 2 or 3 row as runs scoring the paper's own values: single-task rows one run per
    task, multi-task rows B.6's group runs (MultiRC only in its single-task run)."""
    from test_plots import make_cell

    for (section, row), values in _paper_cells(table).items():
        variant = _VARIANT[row]
        method = "spot" if variant.startswith("spot") else variant
        train = {"spot_mode": "targeted" if variant == "spot-t" else "generic"} if method == "spot" else None
        per_task = 115_584.0 if row == "ATTEMPT-MT" else values["params_per_task"]  # what we count
        groups = [(t,) for t in values if t in {c for g in _GROUPS[table] for c in g} | {"multirc"}] \
            if section == "single" else _GROUPS[table]
        for tasks in groups:
            make_cell(run, "t5-base", variant, list(tasks), 1, [values[t] for t in tasks], method=method,
                      train=train, per_task=per_task)


@pytest.mark.parametrize("table", ["table2", "table3"])
def test_the_papers_own_values_compare_at_zero_but_for_the_papers_slips(tmp_path, capsys, table):
    run = tmp_path / table
    _paper_folder(run, table)
    assert cli.main(["compare", str(run), "--json"]) == 0
    cells = [c for c in json.loads(capsys.readouterr().out)["cells"] if c["table"] == table]
    paper = _paper_cells(table)
    # every paper cell is compared, averages and multi-task MultiRC (the single-task run's) included
    assert {(c["section"], c["row"], c["column"]) for c in cells} == {(s, r, col) for (s, r), v in paper.items() for col in v}
    slips = {(c["section"], c["row"], c["column"]) for c in cells if c["slip"]}
    for c in cells:
        if (c["section"], c["row"], c["column"]) not in slips:
            # the paper's averages are its rounded cells' means, within 0.02 (test_paper_numbers.py)
            assert abs(c["delta"]) <= (0.02 if c["column"].startswith("avg_") else 0), c
    want = {("multi", "ATTEMPT-MT", "params_per_task")}
    if table == "table2":  # the ATTEMPT-ST average slip, and a WiC cell that is no accuracy on 319 examples
        want |= {("single", "ATTEMPT-ST", "avg_wnli"), ("single", "SPoT-g", "wic")}
    assert slips == want
    mt_multirc = {c["row"]: c["ours"] for c in cells if c["section"] == "multi" and c["column"] == "multirc"}
    if table == "table2":
        assert mt_multirc == {"FT-MT": 72.77, "Adapter-MT": 75.87, "SPoT-g MT": 73.97, "ATTEMPT-MT": 74.39}
    assert cli.main(["compare", str(run)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps to the terminal's width
    assert "† ATTEMPT-MT params / task: 134k is not d(m + 2(r+1)/N)" in out
    assert "mean |ours - paper| 0.00" in out  # averages within the paper's rounding, slips left out
    plot_run(run, figures=("tables",))
    md = (run / f"figures/{table}_t5-base_vs_paper.md").read_text()
    assert "† ATTEMPT-MT (MT), params / task: 134k is not" in md and "(134k†, " in md
    if table == "table2":
        assert "74.06†" in md and "† ATTEMPT-ST (ST), Avg. (WNLI...): the paper's nine ATTEMPT-ST cells average 72.78" in md


def test_an_ablation_folder_is_compared_to_table_4_only(tmp_path, capsys):
    from test_plots import make_cell

    run = tmp_path / "ablations"
    make_cell(run, "t5-base", "attempt", ["newsqa"], 1, [61.84])
    make_cell(run, "t5-base", "attempt", ["boolq"], 1, [77.06])
    make_cell(run, "t5-base", "attempt-no_target", ["newsqa"], 1, [55.26], method="attempt",
              train={"ablation": "no_target"})
    make_cell(run, "t5-base", "attempt", ["boolq", "wic", "wsc", "cb"], 1, [78.29, 1, 2, 3])
    make_cell(run, "t5-base", "attempt-no_prior", ["boolq", "wic", "wsc", "cb"], 1, [78.29, 1, 2, 3],
              method="attempt", train={"no_prior": True})
    assert cli.main(["compare", str(run), "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert {c["table"] for c in cells} == {"table4"}  # the 10k NewsQA run is no Table 3 cell
    assert {(c["section"], c["row"], c["column"]): c["delta"] for c in cells if c["column"] != "params_per_task"} == {
        ("single", "ATTEMPT-ST", "newsqa"): 0.0, ("single", "ATTEMPT-ST", "boolq"): 0.0,
        ("single", "no target", "newsqa"): 0.0, ("multi", "ATTEMPT-MT", "boolq"): 0.0,
        ("multi", "no prior transfer", "boolq"): 0.0}


def test_each_mrpc_cell_is_compared_in_the_metric_it_is_consistent_with(tmp_path, capsys):
    """Table 2's FT MRPC (90.20 = 184/204) is an accuracy; ATTEMPT-ST's 85.74 is not, and is
    compared with our mean of accuracy and F1 (numbers.csv's metric column)."""
    from attempt_dist.atomic_files import write_json_atomic
    from test_plots import make_cell

    run = tmp_path / "run"
    for variant in ("finetune", "attempt"):
        folder = make_cell(run, "t5-base", variant, ["mrpc"], 1, [0.0])
        metrics = {"mrpc": {"accuracy": 80.0, "f1": 90.0, "acc_f1": 85.0}}
        record = json.loads((folder / "result.json").read_text())
        record["metrics"] = {"dev": metrics, "test": metrics}
        write_json_atomic(folder / "result.json", record)
    assert cli.main(["compare", str(run), "--json"]) == 0
    ours = {c["row"]: c["ours"] for c in json.loads(capsys.readouterr().out)["cells"] if c["column"] == "mrpc"}
    assert ours == {"FT": 80.0, "ATTEMPT-ST": 85.0}


def test_table4_from_the_papers_own_values_compares_at_zero(tmp_path, capsys):
    """Every Table 4 cell, the MT rows from B.6's group runs: 0.00 everywhere, and the two BoolQ
    cells that are no accuracy on 1,635 examples marked."""
    from test_plots import make_cell

    run = tmp_path / "ablations"
    train_of = {"ATTEMPT-ST": None, "ATTEMPT-MT": None, "no target": {"ablation": "no_target"},
                "no attention": {"ablation": "constant_attention"}, "single prompt": {"ablation": "single_prompt"},
                "no prior transfer": {"no_prior": True}}
    groups = {"boolq": ["boolq", "wic", "wsc", "cb"], "newsqa": ["nq", "hotpotqa", "searchqa", "newsqa"],
              "winogrande": ["winogrande", "yelp", "scitail", "paws"]}
    for (section, row), values in _paper_cells("table4").items():
        variant = "attempt" if row.startswith("ATTEMPT") else "attempt-" + row.replace(" ", "_")
        for task, value in values.items():
            tasks = groups[task] if section == "multi" else [task]
            make_cell(run, "t5-base", variant, tasks, 1, [value if t == task else 50.0 for t in tasks], method="attempt",
                      train=train_of[row])
    assert cli.main(["compare", str(run), "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    scored = {(c["section"], c["row"], c["column"]): c for c in cells if c["column"] != "params_per_task"}
    assert set(scored) == {(s, r, t) for (s, r), v in _paper_cells("table4").items() for t in v}  # 7 x 3
    assert {k: c["delta"] for k, c in scored.items() if c["delta"] != 0} == {}
    assert {k for k, c in scored.items() if c["slip"]} == {("single", "single prompt", "boolq"),
                                                         ("single", "no prior transfer", "boolq")}
