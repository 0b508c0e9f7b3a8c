"""Figures 4-5 from a hand-made results folder: check the CSV beside each figure, not pixels."""

import csv
import json

import pytest

from attempt_dist import cli
from attempt_dist.errors import UserError
from attempt_dist.plots import collect, plot_run
from attempt_dist.atomic_files import write_json_atomic


def make_cell(run, model, variant, tasks, seed, scores=None, status="completed", method=None, train=None,
              per_task=1000.0):
    """One sweep cell folder: cell.json and run/result.json (or run/failure.json)."""
    method = method or variant
    label = "+".join(tasks)
    folder = run / "cells" / f"{model}__{variant}__{label}__s{seed}"
    write_json_atomic(folder / "cell.json", {"model": model, "variant": variant, "method": method,
                                             "tasks": list(tasks), "seed": seed, "train": train or {}})
    if status == "completed":
        metrics = {t: {"accuracy": s} for t, s in zip(tasks, scores)}
        write_json_atomic(folder / "run" / "result.json", {
            "schema": 1, "status": "completed", "config": {}, "metrics": {"dev": metrics, "test": metrics},
            "params": {"trainable": int(per_task * len(tasks)), "trainable_per_task": per_task, "total": 1}})
    else:
        write_json_atomic(folder / "run" / "failure.json", {"schema": 1, "status": status, "reason": "x", "config": {}})
    return folder / "run"


def write_attention(run_dir, prompts, rows):
    folder = run_dir / "attention"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts.json").write_text(json.dumps({"prompts": prompts}))
    with open(folder / "test.jsonl", "w") as handle:
        for i, (task, weights) in enumerate(rows):
            handle.write(json.dumps({"task": task, "index": i, "weights": weights}) + "\n")


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def results(tmp_path):
    run = tmp_path / "run"
    for model, base in (("t5-small", 60.0), ("t5-base", 70.0)):
        for i, method in enumerate(("prompt", "attempt")):
            for j, task in enumerate(("boolq", "wic")):
                make_cell(run, model, method, [task], 1, [base + i + j])
                make_cell(run, model, method, [task], 2, [base + i + j + 2])  # seeds average to +1
    make_cell(run, "t5-small", "finetune", ["boolq"], 1, [66.0])
    make_cell(run, "t5-base", "finetune", ["boolq"], 1, status="oom")
    return run


class FakeCount:
    def __init__(self, model, method):
        self.total = {"t5-small": 60, "t5-base": 220}[model]
        self.per_task = {"finetune": self.total, "prompt": 1, "attempt": 3}[method] * 1000.0
        self.trainable = int(self.per_task)


def test_fig4_series(results):
    paths = plot_run(results, counter=lambda m, meth, **options: FakeCount(m, meth), figures=("fig4",))
    out = results / "figures"
    for stem in ("fig4a_params", "fig4b_boolq", "fig4c_wic"):
        for ext in ("png", "pdf", "csv"):
            assert (out / f"{stem}.{ext}") in paths and (out / f"{stem}.{ext}").stat().st_size > 0
    params = {(r["model"], r["method"]): float(r["per_task_params"]) for r in read_csv(out / "fig4a_params.csv")}
    assert params == {("t5-small", "finetune"): 60000, ("t5-base", "finetune"): 220000,
                      ("t5-small", "prompt"): 1000, ("t5-base", "prompt"): 1000,
                      ("t5-small", "attempt"): 3000, ("t5-base", "attempt"): 3000}
    boolq = {(r["model"], r["method"]): (r["status"], r["value"]) for r in read_csv(out / "fig4b_boolq.csv")}
    assert boolq == {
        ("t5-small", "prompt"): ("completed", "61.0"), ("t5-base", "prompt"): ("completed", "71.0"),
        ("t5-small", "attempt"): ("completed", "62.0"), ("t5-base", "attempt"): ("completed", "72.0"),
        ("t5-small", "finetune"): ("completed", "66.0"), ("t5-base", "finetune"): ("oom", ""),
    }
    wic = {(r["model"], r["method"]): float(r["value"]) for r in read_csv(out / "fig4c_wic.csv")}
    assert wic[("t5-base", "attempt")] == 73.0


def test_fig4a_uses_count_trainable(tmp_path):
    # Real meta-device counts: prompt tuning trains m x d = 100 x 512 for t5-small; fine-tuning
    # trains the whole backbone (60,506,624, as tests/test_backbones.py checks).
    run = tmp_path / "run"
    make_cell(run, "t5-small", "prompt", ["boolq"], 1, [50.0])
    make_cell(run, "t5-small", "finetune", ["boolq"], 1, [50.0])
    plot_run(run, figures=("fig4",))
    rows = {r["method"]: float(r["per_task_params"]) for r in read_csv(run / "figures/fig4a_params.csv")}
    assert rows == {"prompt": 100 * 512, "finetune": 60_506_624}


def test_fig5_attention_means(tmp_path):
    run = tmp_path / "run"
    a = make_cell(run, "t5-base", "attempt", ["boolq"], 1, [70.0])
    b = make_cell(run, "t5-base", "attempt", ["yelp"], 1, [90.0])
    ablated = make_cell(run, "t5-base", "attempt-no_target", ["boolq"], 1, [60.0], method="attempt",
                        train={"ablation": "no_target"})
    prompts = ["mnli", "sst2", "target"]
    write_attention(a, prompts, [("boolq", [0.2, 0.2, 0.6]), ("boolq", [0.4, 0.2, 0.4])])
    write_attention(b, prompts, [("yelp", [0.1, 0.8, 0.1])])
    write_attention(ablated, prompts, [("boolq", [1.0, 0.0, 0.0])])  # ablations stay out of Figure 5
    plot_run(run, figures=("fig5",))
    rows = read_csv(run / "figures/fig5_attention.csv")
    got = {(r["task"], r["prompt"]): float(r["mean_weight"]) for r in rows}
    assert got == pytest.approx({("boolq", "mnli"): 0.3, ("boolq", "sst2"): 0.2, ("boolq", "target"): 0.5,
                                 ("yelp", "mnli"): 0.1, ("yelp", "sst2"): 0.8, ("yelp", "target"): 0.1})
    assert (run / "figures/fig5_attention.png").exists() and (run / "figures/fig5_attention.pdf").exists()


def test_records_read_plain_run_folders(tmp_path):
    # A training output folder outside a sweep: coordinates come from the record's config.
    write_json_atomic(tmp_path / "r1" / "result.json", {
        "schema": 1, "status": "completed", "config": {"model": "t5-base", "method": "bitfit", "tasks": "cb,rte"},
        "metrics": {"test": {"cb": {"accuracy": 80.0, "f1_macro": 70.0}}}, "params": {}})
    (record,) = collect(tmp_path)
    assert (record.model, record.method, record.tasks) == ("t5-base", "bitfit", ("cb", "rte"))
    assert record.score("cb") == 80.0  # the task's headline: CB's is accuracy (the paper's Table 2)


def test_nothing_to_plot(tmp_path, capsys):
    with pytest.raises(UserError, match="nothing to plot"):
        plot_run(tmp_path)
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "nothing to plot" in capsys.readouterr().err


# --- unreadable records: a warning naming the file and a failed run, never a silent hole --------

def _good_cells(run):
    make_cell(run, "t5-small", "prompt", ["boolq"], 1, [60.0])
    return make_cell(run, "t5-small", "attempt", ["boolq"], 1, [61.0]) / "result.json"


def _assert_plot_warns(run, path, capsys, *fragments, counted=True):
    """The unreadable file is named in one warning line and counted as a failed run; the rest is drawn."""
    records = collect(run)
    printed = capsys.readouterr().err.strip().splitlines()
    assert len(printed) == 1 and str(path) in printed[0] and "Traceback" not in printed[0]
    for fragment in fragments:
        assert fragment in printed[0]
    failed = [r for r in records if r.path == path.parent and r.status == "failed"]
    assert len(failed) == (1 if counted else 0)
    assert ("counted as a failed run" if counted else "left out") in printed[0]
    assert any(r.status == "completed" for r in records)
    assert cli.main(["plot", str(run)]) == 0
    assert str(path) in capsys.readouterr().err
    assert (run / "figures").exists()  # the readable runs are drawn


def test_truncated_result_is_named_and_counted_as_failed(tmp_path, capsys):
    run = tmp_path / "run"
    path = _good_cells(run)
    path.write_text(path.read_text()[:40])  # a copy cut short
    _assert_plot_warns(run, path, capsys, "not valid JSON", "truncated")


def test_result_holding_a_list_is_named_and_counted_as_failed(tmp_path, capsys):
    run = tmp_path / "run"
    path = _good_cells(run)
    path.write_text(json.dumps([{"schema": 1}]))
    _assert_plot_warns(run, path, capsys, "JSON list", "object")


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: r["metrics"]["test"]["boolq"].update(accuracy="61.0"),
     "metrics['test']['boolq']['accuracy'] should be a number"),
    (lambda r: r["params"].update(trainable_per_task="1k"),
     "'params.trainable_per_task' should be an integer or a number"),
    (lambda r: r.update(metrics=[1, 2]), "'metrics' should be an object, got list"),
    (lambda r: r.pop("config"), "required field 'config' is missing"),
    (lambda r: r.update(schema=2), "schema 2"),
])
def test_result_field_of_the_wrong_type_is_named_and_counted_as_failed(tmp_path, capsys, edit, fragment):
    run = tmp_path / "run"
    path = _good_cells(run)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    _assert_plot_warns(run, path, capsys, fragment)


def test_bad_cell_json_and_failure_record_are_named(tmp_path, capsys):
    run = tmp_path / "run"
    _good_cells(run)
    cell = make_cell(run, "t5-base", "prompt", ["boolq"], 1, [50.0]).parent / "cell.json"
    cell.write_text(json.dumps({"model": "t5-base", "method": "prompt", "tasks": "boolq", "seed": "1"}))
    _assert_plot_warns(run, cell, capsys, "'seed' should be an integer, got string", counted=False)
    cell.write_text(json.dumps({"model": "t5-base", "method": "prompt", "tasks": "boolq", "seed": 1}))
    failure = make_cell(run, "t5-large", "prompt", ["boolq"], 1, status="oom") / "failure.json"
    failure.write_text(json.dumps({"schema": 1, "status": "crashed", "reason": "x", "config": {}}))
    _assert_plot_warns(run, failure, capsys, "status 'crashed'")


def test_plain_run_without_coordinates_is_named(tmp_path, capsys):
    path = write_json_atomic(tmp_path / "r1" / "result.json", {
        "schema": 1, "status": "completed", "config": {"model": "t5-base", "tasks": ["cb"]},
        "metrics": {"test": {"cb": {"accuracy": 80.0}}}, "params": {}})
    make_cell(tmp_path / "sweep", "t5-small", "prompt", ["boolq"], 1, [60.0])  # something readable
    _assert_plot_warns(tmp_path, path, capsys, "no 'method' in its config", counted=False)


def test_fig4a_counts_at_each_runs_own_prompt_length_and_bottleneck(tmp_path):
    # t5-small, d = 512. Prompt tuning at m = 10: m d = 5,120 (not the default m = 100's 51,200).
    # ATTEMPT at m = 10 with r = 8 (old records call r `rank`) and r = 4 (`bottleneck`):
    # d (m + 2 (r + 1)) = 512 * 28 = 14,336 and 512 * 20 = 10,240 (section 6.2, N = 1).
    run = tmp_path / "run"
    make_cell(run, "t5-small", "prompt", ["boolq"], 1, [50.0], train={"prompt_length": 10})
    make_cell(run, "t5-small", "attempt", ["boolq"], 1, [50.0], train={"prompt_length": 10, "rank": 8})
    make_cell(run, "t5-small", "attempt", ["boolq"], 2, [50.0], train={"prompt_length": 10, "bottleneck": 4})
    plot_run(run, figures=("fig4",))
    rows = {(r["method"], r["options"]): float(r["per_task_params"]) for r in read_csv(run / "figures/fig4a_params.csv")}
    assert rows == {("prompt", ""): 5120, ("attempt", "bottleneck=8"): 14336, ("attempt", "bottleneck=4"): 10240}


def test_fig4a_counts_at_every_option_of_the_method_and_merges_what_does_not_size_it(tmp_path):
    # Not only m and r size a method: Houlsby adapters on t5-small (24 of them, d = 512) at
    # reduction factor 16 have a bottleneck of 32: 24 (2 * 512 * 32 + 32 + 512) = 799,488, not the
    # default factor 32's 405,888. Two learning rates size nothing: one line, not two.
    run = tmp_path / "run"
    make_cell(run, "t5-small", "adapter", ["boolq"], 1, [50.0], train={"reduction_factor": 16, "lr": 1e-3})
    make_cell(run, "t5-small", "adapter", ["boolq"], 2, [50.0], train={"reduction_factor": 16, "lr": 3e-4})
    make_cell(run, "t5-small", "adapter", ["boolq"], 3, [50.0])
    plot_run(run, figures=("fig4",))
    rows = read_csv(run / "figures/fig4a_params.csv")
    assert sorted(float(r["per_task_params"]) for r in rows) == [405_888, 799_488]
    assert {r["options"]: float(r["per_task_params"]) for r in rows} == {"reduction_factor=16": 799_488,
                                                                          "reduction_factor=32": 405_888}


def test_fig5_never_draws_zero_for_a_prompt_a_run_did_not_have(tmp_path):
    # Two BoolQ runs with different libraries (SST-2 in one, QQP in the other) and a Yelp run:
    # each prompt's mean is over the instances whose run had it; Yelp never had QQP: blank.
    run = tmp_path / "run"
    a = make_cell(run, "t5-base", "attempt", ["boolq"], 1, [70.0])
    b = make_cell(run, "t5-base", "attempt", ["boolq"], 2, [70.0])
    c = make_cell(run, "t5-base", "attempt", ["yelp"], 1, [90.0])
    write_attention(a, ["mnli", "sst2", "target"], [("boolq", [0.2, 0.2, 0.6])])
    write_attention(b, ["mnli", "qqp", "target"], [("boolq", [0.4, 0.4, 0.2])])
    write_attention(c, ["mnli", "sst2", "target"], [("yelp", [0.1, 0.8, 0.1])])
    plot_run(run, figures=("fig5",))
    got = {(r["task"], r["prompt"]): r["mean_weight"] for r in read_csv(run / "figures/fig5_attention.csv")}
    assert {k: float(v) for k, v in got.items() if v != ""} == pytest.approx({
        ("boolq", "mnli"): 0.3, ("boolq", "sst2"): 0.2, ("boolq", "qqp"): 0.4, ("boolq", "target"): 0.4,
        ("yelp", "mnli"): 0.1, ("yelp", "sst2"): 0.8, ("yelp", "target"): 0.1})
    assert got[("yelp", "qqp")] == ""  # not 0.00


@pytest.mark.parametrize("corrupt, fragment", [
    (lambda folder: (folder / "test.jsonl").write_text('{"task": "boolq", "weights": [0.5, 0.5, 0.0]}\n{"task": "bo'),
     "test.jsonl: line 2 is not an attention line"),
    (lambda folder: (folder / "test.jsonl").write_text('{"task": "boolq", "weights": [0.5, 0.5]}\n'),
     "test.jsonl: line 1 has 2 weights for 3 prompts"),
    (lambda folder: (folder / "prompts.json").write_text('{"prompts": "mnli"}'), "'prompts' should be a list"),
])
def test_unreadable_attention_files_are_one_line_naming_the_file(tmp_path, capsys, corrupt, fragment):
    run = tmp_path / "run"
    cell = make_cell(run, "t5-base", "attempt", ["boolq"], 1, [70.0])
    write_attention(cell, ["mnli", "sst2", "target"], [("boolq", [0.2, 0.2, 0.6])])
    corrupt(cell / "attention")
    assert cli.main(["plot", str(run), "--only", "fig5"]) == 2
    printed = capsys.readouterr().err.strip().splitlines()
    assert len(printed) == 1 and fragment in printed[0] and "Traceback" not in printed[0]
