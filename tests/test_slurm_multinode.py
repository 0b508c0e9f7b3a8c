"""Jobs across nodes on a real SLURM of two emulated nodes (`LOCAL_SLURM_NODES=2
scripts/local-slurm.sh up`; CI starts it): one `slurmd -N NAME` per node on this host.

A cell of 2 nodes x 1 rank trains exactly as 1 node x 2 ranks (gloo, ZeRO-2 and ZeRO-3, t5-tiny:
CPU runs are deterministic), whether submitit starts its ranks or `srun attempt-dist train` does;
a rank stuck on one node (SIGSTOP) ends the job within --dist-timeout (exit 5) and the sweep
requeues it; and a node lost mid-run (its slurmd killed) requeues the job, which resumes from
its last complete checkpoint and ends with the weights of an uninterrupted run.

Skipped, with the reason, without a SLURM of two nodes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from attempt_dist.atomic_files import read_json
from attempt_dist.sweep import collect_states, run_sweep, train_argv
from attempt_dist.training.faults import PAUSE_ENV, STOP_ENV

from tests.test_sweep_slurm import (
    _MISSING, CELL, PAUSE, START_HINT, job_env,  # noqa: F401 (job_env: an autouse fixture)
    assert_same_run, job_id, paused, release_requeued, resumed_at,
    run_dir, sacct, tiny_sweep, wait_done, wait_for,
)
from tests.train_helpers import launch as launch_trainer
from tests.train_helpers import result


def _nodes() -> list[str]:
    if _MISSING is not None:
        return []
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, timeout=15).stdout
    return sorted(set(out.split()))


NODES = _nodes()
pytestmark = [pytest.mark.slurm, pytest.mark.slow,
              pytest.mark.skipif(_MISSING is not None, reason=f"{_MISSING}; {START_HINT}"),
              pytest.mark.skipif(_MISSING is None and len(NODES) < 2,
                                 reason=f"SLURM has {len(NODES)} node(s), these tests need 2; "
                                        "LOCAL_SLURM_NODES=2 LOCAL_SLURM_CPUS=4 scripts/local-slurm.sh up")]

ZERO2 = {"ds_config": "zero2_offload"}
ZERO3 = {"ds_config": "zero3_offload"}
STOP_AFTER = 2  # the stuck rank stops after this step's checkpoint (save_every 2)
DIST_TIMEOUT = 30  # s: generous, so that two ranks starting apart on a loaded host never time out


def srun_train(argv: list[str], log: Path) -> str:
    """`sbatch -N2 -n2` of `srun python -m attempt_dist.cli train ...`: nobody exports the torch
    variables, each task derives them from SLURM's. Returns the job id."""
    command = shlex.join([sys.executable, "-m", "attempt_dist.cli", "train", *argv])
    proc = subprocess.run(["sbatch", "--parsable", "-N2", "--ntasks-per-node=1", "-t", "10", "-o", str(log),
                           "--wrap", f"srun {command}"], capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout.strip().split(";")[0]


def test_two_nodes_of_one_rank_train_as_one_node_of_two_and_survive_a_stuck_rank(tmp_path, job_env):
    """ZeRO-2 by the sweep (submitit) and ZeRO-3 by `srun attempt-dist train`, each 2 nodes x 1
    rank, train exactly as 1 node x 2 ranks.

    The sweep's 2-node cell also meets a stuck rank on its first run: rank 1 (the second node)
    stops itself (SIGSTOP) after step 2's checkpoint; rank 0 gives up after --dist-timeout and
    exits 5, srun ends the stopped task and so the job (FAILED, exit code 5), and the sweep
    requeues the cell, which resumes from step 2 and still ends with 1 x 2's weights."""
    across, within = tmp_path / "across", tmp_path / "within"
    assert run_sweep(tiny_sweep(max_steps=3, executor={"tasks_per_node": 2}, **ZERO2), within, wait=False) == 0
    by_srun, zero3_reference = tmp_path / "srun", tmp_path / "zero3-reference"
    (zero3_cell,) = tiny_sweep(max_steps=3, **ZERO3).cells
    srun_job = srun_train(train_argv(zero3_cell, by_srun), tmp_path / "srun.log")
    # ZeRO-3's 1 x 2 reference: the deepspeed launcher's 2 ranks outside SLURM, meanwhile.
    launched = []
    reference = threading.Thread(target=lambda: launched.append(launch_trainer(
        train_argv(zero3_cell, zero3_reference), launcher="deepspeed", ranks=2, env={STOP_ENV: ""}, check=False)))
    reference.start()
    job_env.setenv(STOP_ENV, f"1:{STOP_AFTER}")  # the sweep's jobs, its requeued one too (it starts past step 2)
    assert run_sweep(tiny_sweep(max_steps=3, executor={"nodes": 2, "tasks_per_node": 1}, dist_timeout=DIST_TIMEOUT,
                                **ZERO2), across, wait=True) == 0
    job_env.delenv(STOP_ENV)
    reference.join()
    assert launched and launched[0].returncode == 0, (launched[0].stdout + launched[0].stderr)[-3000:]

    assert wait_done(within) == {CELL: "done"}
    wait_for("the srun job to end", lambda: sacct(srun_job) and sacct(srun_job)[-1] not in ("PENDING", "RUNNING"),
             timeout=300)
    assert sacct(srun_job) == ["COMPLETED"], (tmp_path / "srun.log").read_text()[-3000:]
    cross, one = run_dir(across, CELL), run_dir(within, CELL)
    # SLURM placed one rank on each node for the 2 x 1 cell, both on one for 1 x 2.
    assert sacct(job_id(across, CELL), "NNodes") == ["2"] and sacct(job_id(within, CELL), "NNodes") == ["1"]
    assert (result(cross)["world_size"], result(cross)["nodes"]) == (2, 2)
    assert (result(one)["world_size"], result(one)["nodes"]) == (2, 1)
    assert (result(by_srun)["world_size"], result(by_srun)["nodes"]) == (2, 2)
    assert_same_run(cross, one)
    assert_same_run(by_srun, zero3_reference)

    # The stuck rank: the first job ended by itself (not at its time limit): its step with rank
    # 0's exit 5, the stopped rank 1 killed by srun (the job's own code, 9).
    (first,) = [h["job_id"] for h in read_json(across / "cells" / CELL / "job.json")["history"]]
    step = subprocess.run(["sacct", "-n", "-P", "-j", f"{first}.0", "-o", "State,ExitCode"], capture_output=True,
                          text=True, check=True, timeout=30).stdout.split()
    assert sacct(first) == ["FAILED"] and step == ["FAILED|5:0"], (sacct(first), step)
    (state,) = collect_states(across)
    assert [(e["cause"], e["action"], e["exit_code"], e["job_id"]) for e in state.retries] == [
        ("rank lost", "requeue", 5, first)]
    assert f"--dist-timeout {DIST_TIMEOUT} s" in state.retries[0]["reason"]
    assert resumed_at(across, CELL) == [f"resumed from step{STOP_AFTER} at step {STOP_AFTER}"]


def _slurmd_pid_file(node: str) -> Path:
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    (line,) = [l for l in conf.splitlines() if l.startswith("SlurmdPidFile=")]
    return Path(line.split("=", 1)[1].replace("%n", node))


def _job_processes_on(node: str, job: str) -> list[int]:
    """The job's task processes on emulated node `node` (by SLURM's variables in their
    environment) and their slurmstepd parents: what dies with a real node."""
    tasks = []
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if f"SLURMD_NODENAME={node}".encode() in env and f"SLURM_JOB_ID={job}".encode() in env:
            tasks.append(int(proc.name))
    parents = set()
    for pid in tasks:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if Path(f"/proc/{parent}/comm").read_text().strip() == "slurmstepd":
                parents.add(parent)
        except (OSError, IndexError, ValueError):
            continue
    return sorted(parents) + tasks


def _node_state(node: str) -> str:
    return subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%t"], capture_output=True, text=True,
                          timeout=15).stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="kills and restarts a slurmd: needs root")
def test_a_lost_node_requeues_the_job_which_resumes_to_the_same_weights(tmp_path, job_env):
    second = NODES[1]
    pid_file = _slurmd_pid_file(second)
    if not pid_file.is_file():
        pytest.skip(f"no pid file {pid_file} for {second}'s slurmd (not a cluster of scripts/local-slurm.sh)")
    run = tmp_path / "run"
    sweep = tiny_sweep(executor={"nodes": 2, "tasks_per_node": 1}, **ZERO2)
    job_env.setenv(PAUSE_ENV, str(PAUSE))
    assert run_sweep(sweep, run, wait=False) == 0
    job_env.delenv(PAUSE_ENV)
    wait_for("both ranks to pause after their checkpoint", lambda: paused(run, CELL, ranks=(0, 1)))
    job = job_id(run, CELL)
    # The uninterrupted reference (the deepspeed launcher's 2 ranks, outside SLURM) meanwhile.
    argv = read_json(run / "cells" / CELL / "job.json")["argv"]
    out_at = argv.index("--output-dir") + 1
    reference = tmp_path / "reference"
    launch_trainer([*argv[:out_at], str(reference), *argv[out_at + 1:]], launcher="deepspeed", ranks=2)

    # The node dies: its slurmd and the job's processes there (rank 1 and its step daemon).
    doomed = _job_processes_on(second, job)
    assert doomed, f"no process of job {job} on {second}"
    for pid in [int(pid_file.read_text()), *doomed]:
        os.kill(pid, 9)
    wait_for(f"{second} to be marked down", lambda: _node_state(second).startswith("down"), timeout=120)
    # It comes back (ReturnToService=2); then the requeued job may start on both nodes again.
    subprocess.run(["slurmd", "-N", second], check=True, timeout=30)
    wait_for(f"{second} to return", lambda: _node_state(second) in ("idle", "mix", "alloc"), timeout=120)
    release_requeued(job)

    assert wait_done(run, timeout=400) == {CELL: "done"}
    assert resumed_at(run, CELL) == [f"resumed from step{PAUSE} at step {PAUSE}"]
    assert_same_run(run_dir(run, CELL), reference)
    assert result(run_dir(run, CELL))["nodes"] == 2
    wait_for("the job to end", lambda: sacct(job)[-1] == "COMPLETED", timeout=60)
    assert sacct(job)[0] in ("NODE_FAIL", "REQUEUED") and len(sacct(job)) == 2, sacct(job)
