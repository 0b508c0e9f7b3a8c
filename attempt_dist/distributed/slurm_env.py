"""The torch rank variables of a task that `srun` started, read from SLURM's own variables.

`srun attempt-dist train ...` (inside an sbatch allocation of N nodes) starts one task per rank,
and SLURM tells each task where it stands; nobody exports RANK/WORLD_SIZE/MASTER_*. Every task
derives the same answer from the step's variables, with no exchange:

  RANK             SLURM_PROCID          this task's place in the step
  WORLD_SIZE       SLURM_STEP_NUM_TASKS  the step's tasks (not the job's: a step may use fewer)
  LOCAL_RANK       SLURM_LOCALID         its place on its node
  MASTER_ADDR      the step's first node (SLURM_STEP_NODELIST, e.g. "gpu[003-004],gpu9" -> gpu003)
  MASTER_PORT      a port derived from the job and step ids: the same on every task, and two
                   jobs that share a first node rarely pick the same one

Only a step sets SLURM_STEP_NUM_TASKS: the batch script itself (one process, though
SLURM_NTASKS says 2) is no step, and stays rank 0 of 1 or is refused as before.
submitit's cells export the same five from its JobEnvironment (sweep/jobs.py); this is for the
plain `srun` form.
"""

from __future__ import annotations

import os
import re

from ..errors import UserError

# Above the well-known and registered ports most daemons take, below Linux's ephemeral range
# (32768-60999), which the kernel hands to outgoing connections.
PORT_FIRST, PORT_COUNT = 20000, 12000


def job_port(job_id: int, step_id: int = 0) -> int:
    """The rendezvous port every task of step `step_id` of job `job_id` agrees on."""
    return PORT_FIRST + (job_id * 31 + step_id) % PORT_COUNT


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: "n1", "n[1-2]", "gpu[003-004,9],cpu1", "a-[07,09]-x"."""
    match = re.match(r"([^,\[]*)(?:\[([^\]]*)\])?([^,\[]*)", nodelist.strip())
    if not match or not (match.group(1) or match.group(2)):
        raise UserError(f"SLURM node list {nodelist!r} names no host")
    prefix, ranges, suffix = match.groups()
    if ranges is None:
        return prefix
    first = ranges.split(",")[0].split("-")[0]  # keeps zero padding: "003-004" -> "003"
    return f"{prefix}{first}{suffix}"


def env_int(name: str, hint: str = "is this an srun task?") -> int:
    """The integer in environment variable `name`; a UserError ending in `hint` when it is not one."""
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer; {hint}") from None


def slurm_step_env() -> dict[str, str] | None:
    """The five torch variables for a task of an `srun` step, or None outside one."""
    if "SLURM_STEP_NUM_TASKS" not in os.environ or "SLURM_PROCID" not in os.environ:
        return None
    nodelist = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        raise UserError("an srun task without SLURM_STEP_NODELIST or SLURM_JOB_NODELIST; cannot tell the first node")
    step = os.environ.get("SLURM_STEP_ID", "0")
    return {
        "RANK": str(env_int("SLURM_PROCID")),
        "WORLD_SIZE": str(env_int("SLURM_STEP_NUM_TASKS")),
        "LOCAL_RANK": str(env_int("SLURM_LOCALID")) if "SLURM_LOCALID" in os.environ else "0",
        "MASTER_ADDR": first_host(nodelist),
        "MASTER_PORT": str(job_port(env_int("SLURM_JOB_ID"), int(step) if step.isdigit() else 0)),
    }


def node_name() -> str:
    """This task's node: SLURM's name for it where SLURM started it (emulated nodes on one host
    differ only there), else the host name."""
    import socket

    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()
