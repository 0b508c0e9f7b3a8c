"""Sweeps end to end through submitit (debug executor in process, LocalExecutor in
subprocesses) with fake trainers injected through the sweep file: jobs finish, results come
back, a second launch skips them, a broken cell is reported while the others keep theirs."""

import json
import re

import pytest
import submitit

from attempt_dist import cli
from attempt_dist.atomic_files import read_json
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from attempt_dist.sweep.jobs import CellJob
from test_sweep_fakes import FAKES, expected_score, read_log, fake_env  # noqa: F401 (fake_env: a fixture)


def _sweep(kind, **extra):
    raw = {
        **FAKES, "name": "t",
        "grid": [
            {"models": ["t5-tiny", "t5-small"], "methods": ["prompt", "attempt"], "tasks": ["boolq"], "seeds": [1]},
            {"models": ["t5-tiny"], "methods": ["broken"], "tasks": ["cb"], "seeds": [1]},
            {"models": ["t5-huge"], "methods": ["prompt"], "tasks": ["boolq"], "seeds": [1]},
        ],
        "libraries": {"glue": {"sources": ["mnli", "sst2"], "max_steps": 3}},
        "executor": {"kind": kind, "array_parallelism": 2, "time": 5},
    }
    raw.update(extra)
    return parse_sweep(raw)


@pytest.mark.parametrize("kind", ["debug", "local"])
def test_sweep_runs_skips_and_reports(kind, tmp_path, fake_env):
    run = tmp_path / "run"
    sweep = _sweep(kind)
    assert run_sweep(sweep, run) == 1  # the broken and the oom cell are not done

    states = {s.name: s.status for s in collect_states(run)}
    assert states == {
        "t5-tiny__prompt__boolq__s1": "done", "t5-tiny__attempt__boolq__s1": "done",
        "t5-small__prompt__boolq__s1": "done", "t5-small__attempt__boolq__s1": "done",
        "t5-tiny__broken__cb__s1": "failed", "t5-huge__prompt__boolq__s1": "oom",
    }
    for cell in sweep.cells:
        if states[cell.name] == "done":
            record = read_json(run / "cells" / cell.name / "run" / "result.json")
            assert record["metrics"]["test"]["boolq"]["accuracy"] == expected_score(cell.model, cell.method, "boolq", 1)
        job = read_json(run / "cells" / cell.name / "job.json")
        assert job["kind"] == kind and job["job_id"]
    failure = read_json(run / "cells/t5-tiny__broken__cb__s1/run/failure.json")
    assert "deliberately broken" in failure["reason"]
    # What `sweep status` shows: each done cell's headline score, a failed cell's reason and log.
    shown = {s.name: s for s in collect_states(run)}
    assert shown["t5-tiny__prompt__boolq__s1"].score == f"boolq {expected_score('t5-tiny', 'prompt', 'boolq', 1):.4g}"
    broken_job = read_json(run / "cells/t5-tiny__broken__cb__s1/job.json")
    assert shown["t5-tiny__broken__cb__s1"].detail.startswith("RuntimeError: deliberately broken cell")
    assert shown["t5-tiny__broken__cb__s1"].detail.endswith(f"(log: {broken_job['stderr']})")

    calls = read_log(fake_env)
    libs = [c for c in calls if c["kind"] == "pipeline"]
    assert sorted(c["model"] for c in libs) == ["t5-small", "t5-tiny"]  # one library per backbone
    assert all(c["stages"] == "sources,prior" for c in libs)
    attempt = [c for c in calls if c["kind"] == "train" and c["method"] == "attempt"]
    assert all(c["prior"].endswith(f"library/glue__{c['model']}/run/prior/prior.pt") for c in attempt)
    prompt = [c for c in calls if c["kind"] == "train" and c["method"] == "prompt"]
    assert all(c["source_prompts"] is None for c in prompt)

    # Second launch: finished and oom cells are skipped, libraries are not rebuilt, only the
    # broken cell runs again.
    assert run_sweep(sweep, run) == 1
    again = read_log(fake_env)[len(calls):]
    assert [(c["kind"], c["method"]) for c in again] == [("train", "broken")]
    assert read_json(run / "cells/t5-tiny__broken__cb__s1/job.json")["history"]


def test_status_command(tmp_path, fake_env, capsys):
    run = tmp_path / "run"
    run_sweep(_sweep("debug"), run)
    # Progress while it runs: one line per cell that ends, with the count done so far.
    ended = re.findall(r"^\[(\d)/6 done\] (\S+) (\w+): (.*)$", capsys.readouterr().out, re.MULTILINE)
    assert sorted(name for _, name, _, _ in ended) == sorted(c.name for c in _sweep("debug").cells)
    assert ended[-1][0] == "4" and {status for _, _, status, _ in ended} == {"done", "failed", "oom"}
    score = expected_score("t5-small", "attempt", "boolq", 1)
    assert ("t5-small__attempt__boolq__s1", "done", f"boolq {score:.4g}") in {(n, s, w) for _, n, s, w in ended}
    assert cli.main(["sweep", "status", str(run)]) == 1  # a failed cell makes status non-zero
    out = capsys.readouterr().out
    assert "4 done, 0 running, 1 failed, 1 oom, 0 pending" in out
    assert "t5-tiny__broken__cb__s1" in out


def test_unsubmitted_cells_are_pending(tmp_path):
    sweep = _sweep("debug")
    (tmp_path / "run").mkdir()
    from attempt_dist.sweep.submit import write_sweep_json

    write_sweep_json(sweep, tmp_path / "run")
    assert {s.status for s in collect_states(tmp_path / "run")} == {"pending"}


def test_two_ranks_get_distributed_env(tmp_path, fake_env):
    # tasks_per_node ranks per job; each rank sees RANK/WORLD_SIZE from TorchDistributedEnvironment.
    sweep = parse_sweep({**FAKES, "grid": {"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq"]},
                         "executor": {"kind": "local", "tasks_per_node": 2, "time": 5}})
    assert run_sweep(sweep, tmp_path / "run") == 0
    ranks = sorted((c["rank"], c["world"]) for c in read_log(fake_env) if c["kind"] == "train")
    assert ranks == [("0", "2"), ("1", "2")]


def test_checkpoint_requeues_with_resume(tmp_path):
    job = CellJob("test_sweep_fakes:train", ["--model", "m"], str(tmp_path))
    delayed = job.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    requeued = delayed.function
    assert requeued.resume and requeued._argv() == ["--model", "m", "--resume", "auto"]
    assert not job.resume and job._argv() == ["--model", "m"]
    assert not list(tmp_path.iterdir())  # checkpoint() saves nothing itself


def test_library_failure_fails_its_cells_only(tmp_path, fake_env):
    sweep = _sweep("debug", pipeline="test_sweep_fakes:no_such_function")
    assert run_sweep(sweep, tmp_path / "run") == 1
    states = {s.name: s for s in collect_states(tmp_path / "run")}
    assert states["t5-tiny__prompt__boolq__s1"].status == "done"
    assert states["t5-tiny__attempt__boolq__s1"].status == "failed"
    assert "library stage glue__t5-tiny failed" in states["t5-tiny__attempt__boolq__s1"].detail


def test_plot_after_sweep(tmp_path, fake_env):
    # The sweep's folder is what `attempt-dist plot` reads; the oom cell shows up as such.
    run = tmp_path / "run"
    run_sweep(_sweep("debug"), run)
    assert cli.main(["plot", str(run), "--only", "fig4"]) == 0
    import csv

    with open(run / "figures/fig4b_boolq.csv") as handle:
        rows = {(r["model"], r["method"]): r for r in csv.DictReader(handle)}
    assert rows[("t5-huge", "prompt")]["status"] == "oom"
    assert float(rows[("t5-tiny", "attempt")]["value"]) == expected_score("t5-tiny", "attempt", "boolq", 1)
    with open(run / "figures/fig4a_params.csv") as handle:
        counted = {(r["model"], r["method"]) for r in csv.DictReader(handle)}
    assert ("t5-small", "prompt") in counted and not any(m == "t5-huge" for m, _ in counted)


def test_requeued_retry_resumes_instead_of_overwriting(tmp_path):
    job = CellJob("test_sweep_fakes:train", ["--model", "m", "--overwrite"], str(tmp_path))
    assert job._argv() == ["--model", "m", "--overwrite"]
    assert job.checkpoint().function._argv() == ["--model", "m", "--resume", "auto"]


def test_a_refusing_trainer_leaves_its_own_error_line_as_the_reason(tmp_path, fake_env):
    sweep = parse_sweep({**FAKES, "grid": {"models": ["t5-tiny"], "methods": ["refused"], "tasks": ["boolq"]},
                         "executor": {"kind": "local", "time": 5}})
    assert run_sweep(sweep, tmp_path / "run") == 1
    (state,) = collect_states(tmp_path / "run")
    assert state.status == "failed"
    assert state.detail.startswith("error: the refused method takes no options here (exit code 2) (log: ")


def test_a_cell_with_checkpoints_resumes_instead_of_overwriting(tmp_path):
    # A relaunched cell, or a job SLURM reruns as first submitted: the checkpoints decide.
    job = CellJob("test_sweep_fakes:train", ["--model", "m", "--overwrite"], str(tmp_path))
    assert job._argv() == ["--model", "m", "--overwrite"]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest").write_text("step4")
    assert job._argv() == ["--model", "m", "--resume", "auto"]


def test_ctrl_c_in_an_in_process_sweep_stops_it_with_one_line(tmp_path, fake_env, capsys):
    sweep = parse_sweep({**FAKES, "grid": {"models": ["t5-tiny"], "methods": ["interrupted", "prompt"],
                                           "tasks": ["boolq"]}, "executor": {"kind": "debug"}})
    assert run_sweep(sweep, tmp_path / "run") == 130
    out = capsys.readouterr().out
    assert "interrupted: 0/2 cells done" in " ".join(out.split())
    states = {s.name: s for s in collect_states(tmp_path / "run")}
    assert states["t5-tiny__interrupted__boolq__s42"].status == "failed"
    assert states["t5-tiny__interrupted__boolq__s42"].detail.startswith("interrupted (Ctrl-C)")
    assert states["t5-tiny__prompt__boolq__s42"].status == "pending"  # not started after the Ctrl-C
    assert [c["method"] for c in read_log(fake_env)] == ["interrupted"]
