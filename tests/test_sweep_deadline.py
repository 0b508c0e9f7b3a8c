"""A sweep's deadline for the whole run (`run_sweep(..., deadline_s=)`, `sweep --deadline`) and the
executor's `requeues` reaching submitit. Fake trainers (test_sweep_fakes) on t5-tiny cells."""

import os
import shutil

import pytest
import yaml

from attempt_dist import cli
from attempt_dist.errors import UserError
from attempt_dist.atomic_files import read_json
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from attempt_dist.sweep.executor import ExecutorSpec
from attempt_dist.sweep.submit import make_executor
from attempt_dist.sweep.schema import validate
from test_sweep_fakes import FAKES, read_log, fake_env  # noqa: F401 (fake_env: a fixture)

NOT_STARTED = "not started: the sweep's --deadline of 0 s was reached; run the same command again to run it"


def _raw(kind="debug", methods=("prompt", "attempt"), **executor):
    return {**FAKES, "name": "d", "grid": {"models": ["t5-tiny"], "methods": list(methods), "tasks": ["boolq"]},
            "libraries": {"glue": {"sources": ["mnli"], "max_steps": 1}},
            "executor": {"kind": kind, "time": 5, **executor}}


def test_deadline_zero_starts_nothing_and_a_relaunch_runs_it(tmp_path, fake_env, capsys):
    run = tmp_path / "run"
    sweep = parse_sweep(_raw())
    assert run_sweep(sweep, run, deadline_s=0) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert read_log(fake_env) == []  # neither the library nor a cell ran
    for cell in sweep.cells:
        failure = read_json(run / "cells" / cell.name / "run" / "failure.json")
        assert (failure["status"], failure["reason"]) == ("failed", NOT_STARTED)
        assert f"not started: cell {cell.name} (the sweep's --deadline of 0 s was reached)" in out
        assert not (run / "cells" / cell.name / "job.json").exists()
    library = read_json(run / "library" / "glue__t5-tiny" / "run" / "failure.json")
    assert library["reason"] == NOT_STARTED
    assert "not started: library glue__t5-tiny" in out
    assert {s.status for s in collect_states(run)} == {"failed"}

    # Not done: the same launch without the deadline builds the library and runs both cells.
    assert run_sweep(sweep, run) == 0
    assert {s.status for s in collect_states(run)} == {"done"}
    assert sorted(c["kind"] for c in read_log(fake_env)) == ["pipeline", "train", "train"]


def test_deadline_cancels_a_running_local_job(tmp_path, fake_env, capsys):
    run = tmp_path / "run"
    sweep = parse_sweep(_raw("local", methods=["sleepy", "prompt"], array_parallelism=1))
    assert run_sweep(sweep, run, deadline_s=3) == 1
    out = " ".join(capsys.readouterr().out.split())
    sleepy, prompt = (run / "cells" / f"t5-tiny__{m}__boolq__s42" for m in ("sleepy", "prompt"))
    job = read_json(sleepy / "job.json")
    assert read_json(sleepy / "run" / "failure.json")["reason"] == "cut at the sweep's --deadline of 3 s"
    assert f"cut: cell t5-tiny__sleepy__boolq__s42 (job {job['job_id']}) at the sweep's --deadline of 3 s" in out
    assert read_json(prompt / "run" / "failure.json")["reason"].startswith(
        "not started: the sweep's --deadline of 3 s was reached")
    from attempt_dist.sweep.state import _pid_alive

    assert not _pid_alive(int(job["job_id"]))  # cancelled, not left running


def test_deadline_from_the_command_line(tmp_path, fake_env, capsys):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(_raw(methods=["prompt"])))
    run = tmp_path / "run"
    assert cli.main(["sweep", str(path), "--output-dir", str(run), "--deadline", "0"]) != 0
    (state,) = collect_states(run)
    assert (state.status, state.detail) == ("failed", NOT_STARTED)
    assert read_log(fake_env) == []


def test_deadline_is_refused_for_slurm(tmp_path):
    sweep = parse_sweep(_raw("slurm", methods=["prompt"]))
    with pytest.raises(UserError, match="--deadline is for the local and debug executors; on SLURM each job has its "
                                        "executor `time`"):
        run_sweep(sweep, tmp_path / "run", deadline_s=60, dry_run=True)


@pytest.mark.parametrize("kind", ["local", "slurm"])
def test_requeues_reach_submitit_max_num_timeout(kind, tmp_path, monkeypatch):
    # submitit requeues a job cut by its time limit while max_num_timeout is not used up; 0: never.
    if kind == "slurm" and shutil.which("srun") is None:
        # submitit builds a SLURM executor only where srun is on PATH; nothing is submitted here.
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / "bin" / "srun").chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert ExecutorSpec().requeues == 3
    for requeues, expected in ((None, 3), (0, 0), (5, 5)):
        raw = {"kind": kind} if requeues is None else {"kind": kind, "requeues": requeues}
        spec = validate(ExecutorSpec, raw, "sweep", at=("executor",))
        assert make_executor(spec, tmp_path, "x")._executor.max_num_timeout == expected
    sweep = parse_sweep({**_raw(kind, methods=["prompt"]), "executor": {"kind": kind, "requeues": 0}})
    assert sweep.cells[0].executor.requeues == 0
    with pytest.raises(UserError, match="executor.requeues"):
        parse_sweep({**_raw(kind, methods=["prompt"]), "executor": {"kind": kind, "requeues": -1}})
