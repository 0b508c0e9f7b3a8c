"""Sweeps on a real SLURM cluster (slurmctld + slurmd + slurmdbd, the one scripts/local-slurm.sh
brings up; CI starts it): the real trainer and pipeline on t5-tiny, submitted by submitit's
SLURM executor, state read through sacct.

Jobs that a test must catch mid-run pause after a checkpoint (ATTEMPT_DIST_PAUSE_AFTER_STEP,
read by the trainer's fault hooks): the test then requeues, signals or cancels a job that has
certainly saved step PAUSE and certainly not finished. A resumed run must end exactly where an
uninterrupted one does (same trainable weights, same losses: CPU runs are deterministic).

Skipped, with the reason, where no SLURM answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from attempt_dist import cli
from attempt_dist.atomic_files import read_json
from attempt_dist.errors import UserError
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from attempt_dist.training.faults import PAUSE_ENV
from attempt_dist.training.runlock import FolderLock

from tests.paths import REPO
from tests.train_helpers import TINY_SWEEP_TRAIN, result, trainable
from tests.train_helpers import launch as launch_trainer

PAUSE = 4
START_HINT = "start the local one (as root): scripts/local-slurm.sh up && eval $(scripts/local-slurm.sh env)"


def _slurm_missing() -> str | None:
    """Why SLURM cannot run these tests here, or None."""
    if shutil.which("sbatch") is None:
        return "no SLURM here (no sbatch on PATH)"
    conf = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    if not Path(conf).is_file():
        return f"no SLURM configuration at {conf} (SLURM_CONF says where one is)"
    try:
        nodes = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=15)
        accounting = subprocess.run(["sacct", "-n", "-X", "-S", "now-1minute"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"SLURM does not answer ({err})"
    if nodes.returncode != 0 or not any(s.strip(" *") in ("idle", "mix", "alloc") for s in nodes.stdout.split()):
        return f"no SLURM node is up (sinfo: {_last_line(nodes.stdout + nodes.stderr) or 'no nodes'})"
    if accounting.returncode != 0:
        return f"SLURM has no accounting, which sweep status needs (sacct: {_last_line(accounting.stderr)})"
    return None


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1][:200]


_MISSING = _slurm_missing()
pytestmark = [pytest.mark.slurm, pytest.mark.slow,
              pytest.mark.skipif(_MISSING is not None, reason=f"{_MISSING}; {START_HINT}")]


@pytest.fixture(autouse=True)
def job_env(monkeypatch):
    # Jobs inherit the submitting environment: this checkout, no pause unless a test asks.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(PAUSE_ENV, raising=False)
    # An in-process run earlier in the session leaves its single-rank RANK/WORLD_SIZE/MASTER_PORT
    # here; a job inheriting them would skip SLURM's own variables (every task rank 0, one port).
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def tiny_sweep(name="slurm", *, methods=("prompt",), tasks=("boolq",), max_steps=PAUSE + 4, grid_extra=(),
               executor=None, **train):
    raw = {
        "name": name,
        "train": {**TINY_SWEEP_TRAIN, "max_steps": max_steps, **train},
        "grid": [{"models": ["t5-tiny"], "methods": list(methods), "tasks": list(tasks), "seeds": [1]}, *grid_extra],
        "executor": {"kind": "slurm", "time": 10, **(executor or {})},
    }
    if any(m in ("attempt", "spot") for m in methods):
        raw["grid"][0]["library"] = "tiny"
        raw["libraries"] = {"tiny": {"sources": ["mnli", "sst2"], "max_steps": 2}}
    return parse_sweep(raw)


def job_id(run: Path, cell: str) -> str:
    return read_json(run / "cells" / cell / "job.json")["job_id"]


def sacct(job: str, field: str = "State") -> list[str]:
    """The field of the job's allocation, one line per run of it (-D: a requeued job has several)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-D", "-j", job, "-o", field], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def wait_for(what: str, predicate, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_requeued(job: str) -> None:
    def requeued():
        show = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
        return "JobState=PENDING" in show and "Restarts=0" not in show
    wait_for(f"job {job} to be requeued", requeued, timeout=120)


def release_requeued(job: str) -> None:
    """SLURM holds a requeued batch job for about two minutes before it may start again; once
    the job is back in the queue, lift that hold so the test does not sit through it."""
    wait_requeued(job)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)


def wait_done(run: Path, timeout: float = 300) -> dict[str, str]:
    """Wait until no cell of the sweep is running or queued; return cell -> status."""
    def settled():
        states = collect_states(run)
        if all(s.status in ("done", "failed", "oom") for s in states):
            return {s.name: s.status for s in states}
        return None
    return wait_for(f"the cells of {run}", settled, timeout)


def run_dir(run: Path, cell: str) -> Path:
    return run / "cells" / cell / "run"


def paused(run: Path, cell: str, ranks=(0,)) -> bool:
    return all((run_dir(run, cell) / f"paused-rank{r}").exists() for r in ranks)


def folder_free(folder: Path) -> bool:
    try:
        FolderLock(folder, "test probe").acquire().release()
    except UserError:
        return False
    return True


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = trainable(a), trainable(b)
    assert wa.keys() == wb.keys() and wa
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert result(a)["train_loss"] == result(b)["train_loss"]


def resumed_at(run: Path, cell: str) -> list[str]:
    log = (run_dir(run, cell) / "logs" / "rank0.log").read_text()
    return [line.split(" INFO ")[-1] for line in log.splitlines() if "resumed from" in line]


CELL = "t5-tiny__prompt__boolq__s1"


def test_library_then_dependent_cells_and_status_through_sacct(tmp_path, capsys):
    run = tmp_path / "run"
    sweep = tiny_sweep(methods=("prompt", "attempt"), max_steps=2)
    assert run_sweep(sweep, run, wait=True) == 0
    states = {s.name: s for s in collect_states(run)}
    assert {n: s.status for n, s in states.items()} == {CELL: "done", "t5-tiny__attempt__boolq__s1": "done"}
    # The ATTEMPT cell waited for its library stage (afterok) and read its prompts and prior.
    library_job = read_json(run / "library/tiny__t5-tiny/job.json")["job_id"]
    attempt = read_json(run / "cells/t5-tiny__attempt__boolq__s1/job.json")
    assert attempt["kind"] == "slurm" and attempt["dependency"] == library_job
    assert read_json(run / "cells/t5-tiny__prompt__boolq__s1/job.json")["dependency"] is None
    (library_end,) = sacct(library_job, "End")
    (attempt_start,) = sacct(attempt["job_id"], "Start")
    assert attempt_start >= library_end  # ISO timestamps compare as text
    # result.json is written before the job's process exits: "done" comes first, then COMPLETED.
    wait_for("the job to end", lambda: sacct(attempt["job_id"]) == ["COMPLETED"], timeout=60)
    assert sacct(library_job) == ["COMPLETED"]
    record = read_json(run_dir(run, "t5-tiny__attempt__boolq__s1") / "result.json")
    assert Path(record["config"]["prior"]).is_file()
    capsys.readouterr()
    assert cli.main(["sweep", "status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "2 done, 0 running, 0 failed, 0 oom, 0 pending" in out and attempt["job_id"] in out
    assert run_sweep(sweep, run, wait=True) == 0  # relaunch: nothing left to submit
    assert read_json(run / "cells/t5-tiny__attempt__boolq__s1/job.json")["job_id"] == attempt["job_id"]


def test_two_task_job_takes_its_ranks_from_slurm_and_equals_the_deepspeed_launcher(tmp_path):
    run = tmp_path / "run"
    sweep = tiny_sweep(max_steps=3, ds_config="zero2_offload", executor={"tasks_per_node": 2})
    assert run_sweep(sweep, run, wait=False) == 0
    argv = read_json(run / "cells" / CELL / "job.json")["argv"]
    reference = tmp_path / "launcher"
    out_at = argv.index("--output-dir") + 1
    launch_trainer([*argv[:out_at], str(reference), *argv[out_at + 1:]], launcher="deepspeed", ranks=2)
    assert wait_done(run) == {CELL: "done"}
    out = run_dir(run, CELL)
    assert result(out)["world_size"] == 2
    # Both ranks were SLURM tasks of one job (srun), each with its own log.
    logs = sorted(p.name for p in (out / "logs").glob("rank*.log"))
    assert logs == ["rank0.log", "rank1.log"]
    assert_same_run(out, reference)


def test_preemption_and_time_limit_requeue_and_resume_exactly(tmp_path, job_env):
    """`scontrol requeue` (what preemption does) and the time-limit warning signal (USR2, what
    `--signal=USR2@90` sends before the limit): both runs resume from step PAUSE's checkpoint
    and end exactly where an uninterrupted run ends."""
    straight, preempted, timed = tmp_path / "straight", tmp_path / "preempted", tmp_path / "timed"
    assert run_sweep(tiny_sweep(), straight, wait=False) == 0
    job_env.setenv(PAUSE_ENV, str(PAUSE))
    for run in (preempted, timed):
        assert run_sweep(tiny_sweep(), run, wait=False) == 0
    job_env.delenv(PAUSE_ENV)

    wait_for("the cell to pause after its checkpoint", lambda: paused(preempted, CELL))
    first = job_id(preempted, CELL)
    subprocess.run(["scontrol", "requeue", first], check=True, timeout=30)
    wait_requeued(first)
    # Relaunching while the job waits in the queue submits nothing: one job per cell folder.
    assert run_sweep(tiny_sweep(), preempted, wait=False) == 0 and job_id(preempted, CELL) == first
    assert not read_json(preempted / "cells" / CELL / "job.json")["history"]
    release_requeued(first)
    wait_for("the other cell to pause", lambda: paused(timed, CELL))
    subprocess.run(["scancel", "--signal=USR2", job_id(timed, CELL)], check=True, timeout=30)
    release_requeued(job_id(timed, CELL))  # requeued by the job itself (submitit's checkpoint)

    for run in (straight, preempted, timed):
        assert wait_done(run) == {CELL: "done"}, run
    for run in (preempted, timed):
        assert resumed_at(run, CELL) == [f"resumed from step{PAUSE} at step {PAUSE}"], run
        assert_same_run(run_dir(run, CELL), run_dir(straight, CELL))
        wait_for("the job to end", lambda: sacct(job_id(run, CELL))[-1] == "COMPLETED", timeout=60)
        runs = sacct(job_id(run, CELL))
        assert runs == ["REQUEUED", "COMPLETED"], runs  # the same job ran twice: requeued, not resubmitted
    assert not resumed_at(straight, CELL)
    # The USR2 path went through submitit's handler and the job's checkpoint(), as at a time limit.
    log = Path(read_json(timed / "cells" / CELL / "job.json")["stderr"]).read_text()
    assert "Caught signal SIGUSR2" in log and "this job is timed-out" in log
    assert not (run_dir(timed, CELL) / "failure.json").exists()  # a requeue is not a failure


def test_cancelled_cell_resumes_on_relaunch_and_a_failing_cell_keeps_its_reason(tmp_path, job_env, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    broken = "t5-tiny__prompt__cb__s1"
    sweep = tiny_sweep(grid_extra=[{"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["cb"], "seeds": [1],
                                    "train": {"data_dir": str(empty)}}])
    run = tmp_path / "run"
    job_env.setenv(PAUSE_ENV, str(PAUSE))
    assert run_sweep(sweep, run, wait=False) == 0
    job_env.delenv(PAUSE_ENV)
    wait_for("the cell to pause", lambda: paused(run, CELL))
    first = job_id(run, CELL)
    subprocess.run(["scancel", first], check=True, timeout=30)
    assert wait_done(run) == {CELL: "failed", broken: "failed"}
    states = {s.name: s for s in collect_states(run)}
    # Killed without a record: sacct's verdict and the log's last error line say what happened.
    assert states[CELL].detail.startswith(f"slurm job {first} ended CANCELLED"), states[CELL].detail
    assert "CANCELLED AT" in states[CELL].detail and states[CELL].detail.endswith("_log.err)")
    failure = read_json(run_dir(run, broken) / "failure.json")["reason"]
    assert str(empty) in failure and failure.endswith("(exit code 2)"), failure
    assert states[broken].detail.startswith(failure)
    capsys.readouterr()
    assert cli.main(["sweep", "status", str(run)]) == 1
    assert "0 done, 0 running, 2 failed, 0 oom, 0 pending" in capsys.readouterr().out
    # sacct says CANCELLED when the batch step ends; the trainer's step (submitit bypasses
    # SIGTERM) holds its run folder until SLURM's KillWait ends it, and a relaunch before then
    # is refused (folder in use): wait for the folder, as a user would.
    wait_for("the cancelled run to let go of its folder", lambda: folder_free(run_dir(run, CELL)), timeout=120)
    assert run_sweep(sweep, run, wait=True) == 1  # the broken cell fails again; the cancelled one resumes
    states = {s.name: s for s in collect_states(run)}
    assert states[CELL].status == "done" and states[broken].status == "failed"
    assert resumed_at(run, CELL) == [f"resumed from step{PAUSE} at step {PAUSE}"]
    assert job_id(run, CELL) != first
    assert read_json(run / "cells" / CELL / "job.json")["history"][0]["job_id"] == first
    assert str(empty) in states[broken].detail
