"""Sweep files: every shipped file parses to the expected grid; bad input names itself."""

from pathlib import Path

import pytest
import yaml

from attempt_dist import cli
from attempt_dist.errors import UserError
from attempt_dist.sweep import load_sweep, parse_sweep
from attempt_dist.sweep.submit import check_executor
from attempt_dist.sweep.spec import options_to_argv, parse_minutes, train_argv
from tests.paths import REPO


# models x methods x tasks (+ multi-task cells), counted by hand from the paper's Tables 2-4
# and Figure 4.
SHIPPED = {
    "launch/sweeps/scaling.yaml": 4 * 4 * 3,
    "launch/sweeps/glue_superglue.yaml": 7 * 9 + 4 * 2,
    "launch/sweeps/mrqa_others.yaml": 6 * 8 + 4 * 2,
    "launch/sweeps/ablations.yaml": 5 * 3 + 2 * 3,   # MT rows: the three B.6 group runs, with and without prior
    "examples/sweeps/tiny.yaml": 2 * 2 * 3,
    "examples/sweeps/toy.yaml": 1 * 3 * 4,   # t5-toy x (PT, ATTEMPT, FT) x four toy targets
}


@pytest.mark.parametrize("path,count", sorted(SHIPPED.items()))
def test_shipped_sweeps_parse(path, count):
    sweep = load_sweep(REPO / path)
    assert len(sweep.cells) == count
    assert len({c.name for c in sweep.cells}) == count


def test_every_shipped_sweep_is_listed():
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "launch/sweeps").glob("*.yaml")}
    assert shipped <= set(SHIPPED)


# Appendix C.1 and Table 7, copied by hand: (model, method, task) -> per-GPU batch size.
PT_BS = {"t5-small": 100, "t5-base": 32, "t5-large": 16, "t5-3b": 2}
TABLE7 = {
    "adapter": {"t5-small": (100, 100, 100), "t5-base": (64, 64, 100), "t5-large": (32, 20, 32), "t5-3b": (4, 4, 8)},
    "finetune": {"t5-small": (100, 100, 100), "t5-base": (32, 32, 100), "t5-large": (32, 32, 32), "t5-3b": (1, 1, 1)},
}


def test_scaling_matches_appendix_c():
    sweep = load_sweep(REPO / "launch/sweeps/scaling.yaml")
    assert {c.model for c in sweep.cells} == set(PT_BS)
    assert {c.method for c in sweep.cells} == {"finetune", "prompt", "adapter", "attempt"}
    for cell in sweep.cells:
        task = cell.tasks[0]
        if cell.method in ("prompt", "attempt"):
            want = PT_BS[cell.model]
        else:
            want = TABLE7[cell.method][cell.model][["boolq", "multirc", "wic"].index(task)]
        assert cell.train["batch_size"] == want, cell.name
        assert cell.train["max_length"] == 216
        assert cell.train["gpu_mem_cap"] == "24GiB"
        assert cell.train["ds_config"] == "auto", cell.name  # the planner's layout per cell
        assert (cell.library is not None) == (cell.method == "attempt")
    assert sorted(sweep.libraries) == sorted(f"paper__{m}" for m in PT_BS)
    assert all(lib.needs_prior for lib in sweep.libraries.values())


def test_ablation_options_pass_through():
    sweep = load_sweep(REPO / "launch/sweeps/ablations.yaml")
    cell = sweep.cell("t5-base__attempt-no_attention__boolq__s42")
    argv = train_argv(cell, Path("/out"))
    assert argv[argv.index("--ablation") + 1] == "constant_attention"
    no_prior = sweep.cell("t5-base__attempt-no_prior__superglue__s42")
    argv = train_argv(no_prior, Path("/out"))
    assert "--no-prior" in argv and argv[argv.index("--tasks") + 1] == "boolq,wic,wsc,cb"


def _raw(**changes):
    raw = {"grid": {"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq", ["boolq", "cb"]]},
           "executor": {"kind": "local"}}
    raw.update(changes)
    return raw


def test_cells_names_and_argv():
    sweep = parse_sweep(_raw(train={"batch_size": 4, "no_prior": False}))
    assert [c.name for c in sweep.cells] == ["t5-tiny__prompt__boolq__s42", "t5-tiny__prompt__boolq+cb__s42"]
    argv = train_argv(sweep.cells[1], Path("/o"))
    assert argv == ["--model", "t5-tiny", "--method", "prompt", "--tasks", "boolq,cb", "--seed", "42",
                    "--batch-size", "4", "--output-dir", "/o"]


def test_options_to_argv():
    assert options_to_argv({"no_prior": True, "x": False, "gate_lr": 0.1, "extra_args": ["--foo", "1"]}) == [
        "--no-prior", "--gate-lr", "0.1", "--foo", "1"]


@pytest.mark.parametrize("raw,words", [
    (_raw(bogus=1), ["bogus", "known keys", "grid", "executor"]),
    (_raw(grid={"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq"], "sizes": [1]}), ["sizes", "seeds"]),
    (_raw(executor={"kind": "local", "gpus": 1}), ["gpus", "gpus_per_node"]),
    (_raw(train={"batch": 4}), ["batch", "batch_size"]),
    (_raw(train={"seed": 4}), ["seed", "grid"]),
    (_raw(overrides=[{"when": {"modle": "x"}, "train": {}}]), ["modle", "model"]),
    (_raw(grid={"models": [], "methods": ["prompt"], "tasks": ["boolq"]}), ["empty grid", "models"]),
    (_raw(grid=[]), ["grid is empty"]),
    (_raw(executor={"kind": "kubernetes"}), ["kubernetes", "slurm, local, debug"]),
    (_raw(grid={"models": ["t5-tiny"], "methods": ["attempt"], "tasks": ["boolq"]}), ["source prompts", "libraries"]),
    # The place is the path into the file; what was given and what is allowed follow it.
    ({"executor": {"kind": "local"}}, ["sweep: missing grid", "models"]),
    (_raw(grid={"models": ["t5-tiny"], "methods": ["prompt", {"name": "x", "method": "prompt", "train": {"batch": 4}}],
                "tasks": ["boolq"]}), ["sweep: grid[0].methods[1].train: unknown key(s) batch;", "batch_size"]),
    (_raw(grid={"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq"], "seeds": [1, "x"]}),
     ["sweep: grid[0].seeds[1]:", "integer", "'x'"]),
    (_raw(grid={"models": ["t5__tiny"], "methods": ["prompt"], "tasks": ["boolq"]}),
     ["sweep: grid[0].models[0]: 't5__tiny' is not a usable name", "no '__'"]),
    (_raw(executor={"kind": "local", "nodes": 0}), ["sweep: executor.nodes:", "greater than or equal to 1", "got 0"]),
    (_raw(executor={"kind": "local", "nodes": 2}), ["nodes > 1 needs the slurm executor"]),
    (_raw(executor={"kind": "local", "mem": "lots"}), ["sweep: executor.mem: 'lots' is not a size", "64G"]),
    (_raw(overrides=[{"when": {"model": "t5-tiny"}, "executor": {"time": "later"}}]),
     ["sweep: overrides[0].executor.time: 'later' is not a time", "HH:MM:SS"]),
    (_raw(overrides=[{"executor": {"kind": "slurm"}}]), ["overrides[0].executor: unknown key(s) kind", "time"]),
    (_raw(libraries={"glue": {"sources": ["mnli"], "max_steps": "many"}}), ["sweep: libraries.glue.max_steps:", "'many'"]),
    (_raw(libraries={"glue": {"max_steps": 3}}), ["sweep: libraries.glue: missing sources", "mnli"]),
    (_raw(trainer="mymodule.train"), ["sweep: trainer: must be 'module:function', got 'mymodule.train'"]),
])
def test_bad_sweeps_say_what_is_wrong(raw, words):
    with pytest.raises(UserError) as err:
        parse_sweep(raw)
    assert len(str(err.value).splitlines()) == 1
    for word in words:
        assert word in str(err.value)


_LIB = {"libraries": {"glue": {"sources": ["mnli"]}}}
_GRID = {"models": ["t5-tiny"], "methods": ["prompt", "attempt"], "tasks": ["rte"], "library": "glue"}


@pytest.mark.parametrize("train,words", [
    # The first cell is named: the flag's choices refuse the value whichever method the cell runs.
    ({"ablation": "no_targt"}, ["cell t5-tiny__prompt__rte__s42", "--ablation: invalid choice: 'no_targt'",
                                "no_target"]),
    ({"ds_config": "zero3_offlaod"}, ["cell t5-tiny__prompt__rte__s42", "'zero3_offlaod' not found", "zero3_offload"]),
    ({"batch_size": "four"}, ["--batch-size", "invalid int value: 'four'"]),
    ({"max_steps": -3}, ["--max-steps must be at least 1, got -3"]),
    ({"dropout": 1.5}, ["--dropout must be in [0, 1)"]),
])
def test_cell_values_go_through_the_trainers_parser(train, words):
    """What the trainer would refuse on the cluster is refused when the sweep is read."""
    with pytest.raises(UserError) as err:
        parse_sweep(_raw(train=train, grid=_GRID, **_LIB))
    assert len(str(err.value).splitlines()) == 1
    for word in words:
        assert word in str(err.value)


def test_slurm_without_sbatch_suggests_local(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    sweep = parse_sweep(_raw(executor={"kind": "slurm", "partition": "gpu"}))
    with pytest.raises(UserError, match="no sbatch.*local"):
        check_executor(sweep.executor)


def test_cli_reports_bad_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_raw(grid={"models": ["t5-tiny"], "methods": [], "tasks": ["boolq"]})))
    assert cli.main(["sweep", str(path), "--dry-run", "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "methods" in err and "Traceback" not in err


def test_cli_slurm_launch_without_sbatch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["sweep", str(REPO / "launch/sweeps/scaling.yaml"), "--output-dir", str(tmp_path / "r")]) == 2
    assert "--executor local" in capsys.readouterr().err


def test_dry_run_lists_jobs_and_executor(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the executor column unfolded
    # The listing only: planning 48 auto cells' memory (t5-small to t5-3b traced, about 2 minutes
    # cold on 2 cores) is test_sweep_resources.py's, and glue_superglue's dry run plans its cells.
    monkeypatch.setattr("attempt_dist.sweep.recipe.with_planned_memory", lambda sweep: (sweep, []))
    assert cli.main(["sweep", str(REPO / "launch/sweeps/scaling.yaml"), "--dry-run",
                     "--output-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "48 job(s) to submit" in out and "4 library stage(s)" in out and "partition=(cluster default)" in out
    assert not (tmp_path / "r").exists()  # a dry run writes nothing


def test_cluster_settings_come_from_the_command_line_and_a_user_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    settings = tmp_path / "cluster.yaml"
    settings.write_text("partition: a100\naccount: lab42\ntime: '12:00:00'\n")
    assert cli.main(["sweep", str(REPO / "launch/sweeps/scaling.yaml"), "--dry-run", "--executor-file",
                     str(settings), "--partition", "h100", "--output-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    # The command line wins over the file; an `overrides` rule (t5-3b's 48 h) over both.
    assert "partition=h100" in out and "account=lab42" in out and "partition=a100" not in out
    assert "time=720m" in out and "time=2880m" in out
    settings.write_text("partition: a100\nnodez: 2\n")
    assert cli.main(["sweep", str(REPO / "launch/sweeps/scaling.yaml"), "--dry-run", "--executor-file",
                     str(settings), "--output-dir", str(tmp_path / "r")]) == 2
    assert "nodez" in capsys.readouterr().err


def test_status_needs_a_folder(tmp_path, capsys):
    assert cli.main(["sweep", "status"]) == 2
    assert cli.main(["sweep", "status", str(tmp_path / "nope")]) == 2


def test_time_parsing():
    assert parse_minutes(90, "t") == 90
    assert parse_minutes("01:30:00", "t") == 90
    assert parse_minutes("1-00:00:00", "t") == 1440
    with pytest.raises(UserError):
        parse_minutes("soon", "t")


def test_malformed_yaml_names_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid:\n  models: [t5-tiny\n  methods: [prompt]\n")
    with pytest.raises(UserError) as err:
        load_sweep(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}:4:") and "not valid YAML" in message and "\n" not in message


def test_two_rules_that_disagree_on_one_cell_are_refused():
    """A later rule silently winning gave the Table 4 MT cell gate lr 0.3 where the file asked
    0.1 (issue 19): rules that both match a cell must agree on the options they share."""
    raw = _raw(grid={"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq", "cb"]},
               overrides=[{"when": {"task": ["boolq", "cb"]}, "train": {"lr": 0.1, "epochs": 3}},
                          {"when": {"task": "cb"}, "train": {"lr": 0.3}}])
    with pytest.raises(UserError, match=r"overrides\[0\] and overrides\[1\] both match cell "
                                        r"t5-tiny__prompt__cb__s42 and set lr to 0.1 and 0.3"):
        parse_sweep(raw)
    raw["overrides"][1]["train"] = {"lr": 0.1, "warmup_steps": 7}  # agreeing, or disjoint keys: fine
    sweep = parse_sweep(raw)
    assert sweep.cell("t5-tiny__prompt__cb__s42").train == {"lr": 0.1, "epochs": 3, "warmup_steps": 7}


def test_sweeps_sharing_a_library_folder_read_one_library(tmp_path):
    from attempt_dist.sweep.submit import library_args
    from attempt_dist.sweep.shared_library import link_shared_libraries

    def sweep(name, task):
        return parse_sweep({"name": name, "grid": {"models": ["t5-tiny"], "methods": ["attempt"], "tasks": [task],
                                                   "library": "p"},
                            "libraries": {"p": {"sources": ["mnli"], "folder": "../shared"}},
                            "executor": {"kind": "local"}})

    runs = {}
    for name, task in (("a", "rte"), ("b", "cb")):
        s, run = sweep(name, task), tmp_path / name
        link_shared_libraries(s, run)
        link_shared_libraries(s, run)  # again: the link is kept
        (cell,) = s.cells
        runs[name] = Path(library_args(run, cell, s.libraries[cell.library])["source_prompts"]).resolve()
    assert runs["a"] == runs["b"] == tmp_path / "shared" / "p__t5-tiny" / "run" / "prompts"
    own = tmp_path / "c" / "library" / "p__t5-tiny"
    own.mkdir(parents=True)
    with pytest.raises(UserError, match="a library of this run's own"):
        link_shared_libraries(sweep("c", "rte"), tmp_path / "c")


def test_dry_run_json_resolves_every_cells_options(tmp_path, capsys):
    import json

    assert cli.main(["sweep", str(REPO / "launch/sweeps/glue_superglue.yaml"), "--dry-run", "--json",
                     "--output-dir", str(tmp_path / "run")]) == 0
    out = json.loads(capsys.readouterr().out)
    cells = {c["name"]: c["train"] for c in out["cells"]}
    assert len(cells) == 71
    ft = cells["t5-base__finetune__rte__s42"]
    assert (ft["lr"], ft["epochs"], ft["max_length_by_task"]) == (3e-4, 20.0, {"rte": 256})  # method default resolved
    spot_t = cells["t5-base__spot-t__cb__s42"]
    assert spot_t["spot_top_k"] == 1 and spot_t["spot_probe"].endswith("/library/paper__t5-base/run/probes")
    mrc = cells["t5-base__attempt__multirc__s42"]
    assert (mrc["gate_lr"], mrc["max_length_by_task"], mrc["prior"].rsplit("/", 1)[1]) == (0.1, {"multirc": 348}, "prior.pt")
    assert out["libraries"]["paper__t5-base"]["folder"] == "../paper-library"
    by_name = {c["name"]: c for c in out["cells"]}
    assert by_name["t5-base__attempt__cb__s42"]["sources"] == ["mnli", "sst2", "qqp", "qnli", "squad", "record"]
    assert "sources" not in by_name["t5-base__finetune__cb__s42"]
    assert cli.main(["sweep", str(REPO / "launch/sweeps/glue_superglue.yaml"), "--json"]) == 2
    assert "--json prints the dry run; add --dry-run" in capsys.readouterr().err


def test_dry_run_json_names_the_source_spot_t_selects_once_probes_exist(tmp_path, capsys):
    import json

    from attempt_dist.sweep.resolved import resolved_sweep

    sweep = load_sweep(REPO / "launch/sweeps/ablations.yaml")
    run = tmp_path / "ablations"
    pending = resolved_sweep(sweep, run)["cells"]
    single = {c["name"]: c.get("selected_sources") for c in pending if c["variant"] == "attempt-single_prompt"}
    assert len(single) == 3 and all("once the library's probes are built" in v for v in single.values())
    probes = tmp_path / "paper-library" / "paper__t5-base" / "run" / "probes"  # the shared folder
    probes.mkdir(parents=True)
    (probes / "library.json").write_text(json.dumps({"prompts": {
        "boolq": {"similarity": {"mnli": 0.2, "qnli": 0.5, "squad": 0.1}},
        "newsqa": {"similarity": {"mnli": 0.1, "qnli": 0.2, "squad": 0.9}},
        "winogrande": {"similarity": {"mnli": 0.6, "qnli": 0.5, "squad": 0.1}}}}))
    cells = {c["task_label"]: c["selected_sources"] for c in resolved_sweep(sweep, run)["cells"]
             if c["variant"] == "attempt-single_prompt"}
    assert cells == {"boolq": ["qnli"], "newsqa": ["squad"], "winogrande": ["mnli"]}


def test_slurm_cells_wait_for_a_library_another_launch_is_building(tmp_path, monkeypatch):
    """A shared library the Table 2 sweep is still building: the Table 3 sweep's cells are
    submitted after that job, not started without their library."""
    from rich.console import Console

    from attempt_dist.sweep import submit
    from attempt_dist.sweep.plan import SweepPlan
    from attempt_dist.sweep.state import CellState

    sweep = parse_sweep({"grid": {"models": ["t5-tiny"], "methods": ["attempt", "prompt"], "tasks": ["rte"],
                                  "library": "p"},
                         "libraries": {"p": {"sources": ["mnli"], "folder": "../shared"}},
                         "executor": {"kind": "local"}})
    submitter = submit.Submitter(SweepPlan(tmp_path / "run", sweep, cells=list(sweep.cells)))
    monkeypatch.setattr(submit, "library_state", lambda run, key: CellState(key, "running", job_id="4711"))
    submitted = []
    monkeypatch.setattr(submitter, "submit_cells",
                        lambda cells, dependency=None: submitted.append(([c.method for c in cells], dependency)) or [])
    submit.submit_slurm(submitter, Console(file=open(tmp_path / "out.txt", "w")))
    assert sorted(submitted) == [(["attempt"], "4711"), (["prompt"], None)]
