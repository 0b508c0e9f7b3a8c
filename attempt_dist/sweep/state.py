"""Where a sweep's files live and what state each cell is in.

    RUN/sweep.json                 the expanded sweep (cells, libraries, executor)
    RUN/configuration.json         what each cell trains, from the first launch (configuration.py)
    RUN/replaced/<cell>.<n>/       a cell's folder set aside by --rerun-changed (not shown by status)
    RUN/cells/<cell>/cell.json     the cell's grid coordinates and options
    RUN/cells/<cell>/job.json      the submitted job(s): id, executor, log paths, argv
    RUN/cells/<cell>/retries.json  the sweep's retries of the cell by cause (retry.py)
    RUN/cells/<cell>/run/          the trainer's --output-dir (result.json | failure.json)
    RUN/library/<lib>__<model>/    library stage: job.json, run/ (prompts/, prior/), library.json
    RUN/logs/                      submitit's pickles and stdout/stderr per job id

A cell is done (result.json), oom / failed (failure.json, or a job that ended without a
record), running (job alive), or pending (not submitted yet, or queued).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..atomic_files import read_json
from ..finished.record import FAILURE_FILENAME, RESULT_FILENAME, RecordError, RunFailure, read_record

STATUSES = ("done", "running", "failed", "oom", "pending")
LIBRARY_DONE = "library.json"  # written by a library job that ended well, beside its run/
RETRIES_FILENAME = "retries.json"  # RUN/cells/<cell>/: the sweep's retry decisions (retry.py)
REPLACED_DIR = "replaced"  # RUN/replaced/: cell folders of an earlier configuration (configuration.py)
log = logging.getLogger("attempt_dist.sweep")

if TYPE_CHECKING:
    from .spec import Sweep


def default_run_dir(sweep: Sweep) -> Path:
    """Where a sweep runs when no --output-dir is given."""
    return Path("runs") / sweep.name


def cell_dir(run: Path, name: str) -> Path:
    return Path(run) / "cells" / name


def cell_run_dir(run: Path, name: str) -> Path:
    return cell_dir(run, name) / "run"


def library_dir(run: Path, key: str) -> Path:
    return Path(run) / "library" / key


@dataclass
class CellState:
    name: str
    status: str
    detail: str = ""
    job_id: str | None = None
    score: str = ""  # done cells: each task's headline test score
    retries: list = field(default_factory=list)  # the sweep's retry decisions (retry.py), oldest first
    speed: dict | None = None  # done cells: steady-state tokens/s, examples/s, MFU (RunResult.speed)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "job_id": self.job_id,
                "score": self.score, "retries": self.retries, "speed": self.speed}


def run_state(run_dir: Path, job_file: Path) -> CellState:
    """State of one output folder (`run_dir`) whose job is described by `job_file`."""
    name = job_file.parent.name
    for record_file in (run_dir / RESULT_FILENAME, run_dir / FAILURE_FILENAME):
        if record_file.exists():
            try:
                record = read_record(record_file)
            except RecordError as err:  # counted as failed and named, never dropped
                log.warning("warning: %s", err)
                return CellState(name, "failed", str(err)[:300], _job_id(job_file))
            if isinstance(record, RunFailure):
                job = read_json_or_empty(job_file) if job_file.exists() else {}
                reason = record.reason or last_error_line(job.get("stderr")) or "no reason recorded"
                alive = job_alive(job)[0] if job.get("kind") == "slurm" else False
                if alive == "pending":
                    # SLURM requeued the job (a lost node, preemption): its rerun sets this record aside.
                    return CellState(name, "pending", f"requeued by SLURM after: {reason[:200]}", _job_id(job_file))
                if alive is True:
                    # Its verdict counts once the job has ended: until then another of its tasks
                    # (a stopped rank being killed) may still write, and a retry would meet it.
                    return CellState(name, "running", f"ending after: {reason[:200]}", _job_id(job_file))
                status = "oom" if record.status == "oom" else "failed"
                return CellState(name, status, _with_log(reason[:300], job), _job_id(job_file))
            return CellState(name, "done", "", _job_id(job_file), headline(record), speed=record.speed())
    if not job_file.exists():
        return CellState(name, "pending", "not submitted")
    job = read_json_or_empty(job_file)
    job_id = str(job.get("job_id"))
    alive, detail = job_alive(job)
    if alive is None:
        return CellState(name, "running", detail or "state unknown", job_id)
    if alive == "pending":
        return CellState(name, "pending", detail or "queued", job_id)
    if alive:
        return CellState(name, "running", detail, job_id)
    # Ended without a record (killed, cancelled, timed out): the log says why.
    reason = last_error_line(job.get("stderr")) or "job ended without result.json or failure.json"
    return CellState(name, "failed", _with_log(f"{detail}: {reason}" if detail else reason, job), job_id)


def headline(record) -> str:
    """"task score" for each task of a result record (test split, else dev): its headline metric."""
    from ..tasks import headline_or_mean

    by_task = record.metrics.get("test") or record.metrics.get("dev") or {}
    return " ".join(f"{task} {headline_or_mean(task, values):.4g}" for task, values in by_task.items() if values)


_ERROR = re.compile(r"error|exception|killed|cancelled|due to time limit|traceback", re.IGNORECASE)


def last_error_line(log: str | None, tail_bytes: int = 65536) -> str:
    """The last line of a job's log that reports an error (else its last line), or ""."""
    if not log:
        return ""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - tail_bytes))
            lines = [l.strip() for l in handle.read().decode("utf-8", "replace").splitlines() if l.strip()]
    except OSError:
        return ""
    errors = [l for l in lines if _ERROR.search(l) and not l.startswith("File ")]
    return ((errors or lines or [""])[-1])[:300]


def _with_log(reason: str, job: dict) -> str:
    return f"{reason} (log: {job['stderr']})" if job.get("stderr") else reason


def library_state(run: Path, key: str) -> CellState:
    folder = library_dir(run, key)
    if (folder / LIBRARY_DONE).exists():
        return CellState(key, "done")
    state = run_state(folder / "run", folder / "job.json")
    state.name = key
    if state.status == "done":  # result.json alone does not finish a library
        state.status = "running"
    return state


def job_alive(job: dict):
    """True / False / "pending" / None (unknown), and a detail string."""
    kind, job_id = job.get("kind"), str(job.get("job_id"))
    if kind == "local":
        try:
            pid = int(job_id)
        except ValueError:
            return False, ""
        return _pid_alive(pid), f"local pid {pid}"
    if kind == "slurm":
        try:
            import submitit

            state = submitit.SlurmJob(folder=job["folder"], job_id=job_id).state
        except Exception as err:  # sacct missing or unreachable
            return None, f"slurm job {job_id}: state unknown ({type(err).__name__})"
        if state in _REQUEUE_ENDS:
            # Accounting (sacct) records this run's end before the controller's requeue shows
            # there: the queue says whether the job waits to run again.
            state = _queue_state(job_id) or state
        if state in ("PENDING", "REQUEUED", "CONFIGURING"):
            return "pending", f"queued, slurm job {job_id}"
        if state in ("RUNNING", "COMPLETING", "SUSPENDED", "UNKNOWN", "READY"):
            return True, f"slurm job {job_id} {state.lower()}"
        return False, f"slurm job {job_id} ended {state}"
    return False, f"{kind} job {job_id} is no longer running"


# How a run ends that SLURM may requeue (a lost node, preemption, the time limit).
_REQUEUE_ENDS = ("NODE_FAIL", "PREEMPTED", "TIMEOUT")


def _queue_state(job_id: str) -> str | None:
    """The job's state in the controller's queue (squeue), or None when it is not queued."""
    import subprocess

    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = out.stdout.split() if out.returncode == 0 else []
    return states[0] if states else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def cell_state(run: Path, name: str) -> CellState:
    """The state of the sweep's cell `name` (its run folder, its job.json, its retries)."""
    state = run_state(cell_run_dir(run, name), cell_dir(run, name) / "job.json")
    state.retries = read_history(run, name)
    return state


def read_history(run: Path, name: str) -> list[dict]:
    """The sweep's retry decisions for cell `name`, oldest first (written by retry.py)."""
    path = cell_dir(run, name) / RETRIES_FILENAME
    data = read_json_or_empty(path) if path.exists() else {}
    entries = data.get("retries")
    return entries if isinstance(entries, list) else []


def collect_states(run: Path) -> list[CellState]:
    run = Path(run)
    return [cell_state(run, n) for n in sweep_cell_names(run)]


def sweep_cell_names(run: Path) -> list[str]:
    run = Path(run)
    if not run.is_dir():
        raise UserError(f"{run} is not a sweep folder; pass the --output-dir a sweep was launched with")
    names: list[str] = []
    if (run / "sweep.json").exists():
        names = [c["name"] for c in read_json(run / "sweep.json").get("cells", [])]
    cells = run / "cells"
    if cells.is_dir():
        names += sorted(p.name for p in cells.iterdir() if p.is_dir() and p.name not in names)
    if not names:
        raise UserError(f"{run} holds no sweep cells (no sweep.json, no cells/); launch one with attempt-dist sweep FILE.yaml")
    return names


def _job_id(job_file: Path) -> str | None:
    if job_file.exists():
        return str(read_json_or_empty(job_file).get("job_id"))
    return None


def read_json_or_empty(path: Path) -> dict:
    try:
        data = read_json(path)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
