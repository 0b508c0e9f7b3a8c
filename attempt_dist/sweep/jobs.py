"""What one submitit job runs: a training cell or a library stage.

Each job is a `submitit.helpers.Checkpointable`. On timeout or preemption submitit calls
`checkpoint()` on rank 0 only, inside a signal handler, so it must not save anything: training
already checkpoints on all ranks inside its loop. `checkpoint()` only requeues a copy of the
job that passes `--resume auto`, so the requeued run continues from the latest checkpoint (or
starts, if it was stopped before its first one). A job that SLURM reruns as it was first
submitted (`scontrol requeue`, preemption without the signal, a lost node) and a relaunched
cell find their checkpoints when they start, and resume too.

A job never raises for a failed run without leaving a record: if the trainer returns non-zero
or raises and left no result.json / failure.json, the job writes failure.json itself, so the
sweep can tell "failed" from "not run" without asking the scheduler.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

import submitit

from ..distributed.env import free_port
from ..distributed.slurm_env import job_port
from ..atomic_files import read_json, write_json_atomic
from ..finished.record import FAILURE_FILENAME, RESULT_FILENAME, SCHEMA_VERSION
from .state import LIBRARY_DONE, last_error_line

DIST_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def resolve_callable(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class _Job(submitit.helpers.Checkpointable):
    def __init__(self, entry: str, argv: list[str], run_dir: str, resume: bool = False) -> None:
        self.entry = entry
        self.argv = list(argv)
        self.run_dir = str(run_dir)
        self.resume = resume

    def checkpoint(self, *args, **kwargs):
        # Only requeue: every rank already saved inside the training loop. submitit then ends
        # this run with SystemExit from the signal handler: that is a requeue, not a failure.
        self._requeuing = True
        return submitit.helpers.DelayedSubmission(type(self)(self.entry, self.argv, self.run_dir, resume=True))

    def _argv(self) -> list[str]:
        if not (self.resume or self._has_checkpoint()):
            return list(self.argv)
        # A requeued or relaunched run continues its own checkpoints: an --overwrite of its
        # first start (a retried cell) must not wipe them, and the trainer refuses the two
        # flags together. "auto": a job requeued before its first checkpoint starts the run.
        return [a for a in self.argv if a != "--overwrite"] + ["--resume", "auto"]

    def _has_checkpoint(self) -> bool:
        # Decided when the job starts, not when it is submitted: SLURM reruns the very job it
        # preempted (`scontrol requeue`, a lost node), and by then the run has checkpoints.
        from ..training.checkpoint import latest_tag

        return latest_tag(self.run_dir) is not None

    def _run(self) -> int:
        saved = {k: os.environ.get(k) for k in DIST_VARS}
        try:
            _export_distributed_env()
            if _is_rank_zero():
                set_aside_failure(Path(self.run_dir))  # a rerun of a requeued job: its old verdict
            code = int(resolve_callable(self.entry)(self._argv()) or 0)
        except SystemExit as err:  # argparse errors inside the trainer, or submitit's requeue
            if getattr(self, "_requeuing", False):
                raise
            code = err.code if isinstance(err.code, int) else 1
            self._record_failure(f"{self.entry} exited with {err.code}")
        except KeyboardInterrupt:
            # Ctrl-C reaches every process of the terminal: the checkpoints stay, the sweep's
            # relaunch resumes from them. Raised on, so an in-process (debug) sweep stops too.
            self._record_failure("interrupted (Ctrl-C); relaunch the sweep to resume from the last checkpoint")
            raise
        except Exception as err:
            # Recorded, not raised: the debug executor would open pdb on an exception, and the
            # sweep reads failure.json rather than the scheduler's verdict.
            traceback.print_exc()
            self._record_failure((f"{type(err).__name__}: {err}".splitlines() or ["error"])[0][:500])
            code = 1
        finally:
            # The debug executor runs jobs in this very process: leave its environment as it was.
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if code != 0:
            # The trainer said why on stderr (a UserError's one line): that is the reason to keep.
            line = _log_error_line()
            self._record_failure(f"{line} (exit code {code})" if line else f"{self.entry} returned exit code {code}")
            self._record_exit_code(code)
        return code

    def _record_exit_code(self, code: int) -> None:
        """The exit code in failure.json: the sweep retries by it (retry.py)."""
        failure = Path(self.run_dir) / FAILURE_FILENAME
        if _is_rank_zero() and failure.exists():
            record = read_json(failure)
            if isinstance(record, dict) and record.get("exit_code") is None:
                write_json_atomic(failure, {**record, "exit_code": code})

    def _record_failure(self, reason: str) -> None:
        run = Path(self.run_dir)
        if _is_rank_zero() and not (run / RESULT_FILENAME).exists() and not (run / FAILURE_FILENAME).exists():
            write_json_atomic(run / FAILURE_FILENAME, {
                "schema": SCHEMA_VERSION, "status": "failed", "reason": reason, "config": {"argv": self._argv()},
            })


class CellJob(_Job):
    """One training run: `trainer(argv)` writes run_dir/result.json or run_dir/failure.json."""

    def __call__(self) -> dict:
        code = self._run()
        _end_failed_slurm_task(code)
        return _outcome(Path(self.run_dir), code)


class LibraryJob(_Job):
    """Source prompts (+ attention prior) for one backbone, built once before its cells."""

    def __call__(self) -> dict:
        code = self._run()
        run = Path(self.run_dir)
        if code == 0 and _is_rank_zero():
            write_json_atomic(run.parent / LIBRARY_DONE, {"status": "completed", "argv": self._argv()})
        # Not _end_failed_slurm_task: a failed library job must still end COMPLETED for SLURM, or
        # its cells (afterok) would wait in the queue forever; they fail on the missing library.
        return {"status": "completed" if code == 0 else "failed", "code": code}


def _end_failed_slurm_task(code: int) -> None:
    """On SLURM, a task whose run failed (its record written) exits with the trainer's code, so
    that srun (--kill-on-bad-exit, submit.py) ends the job's other tasks: a rank stopped or hung
    on another node would otherwise hold the job, and its nodes, until the time limit. sacct
    then shows the job FAILED with that exit code. Elsewhere (local, debug: the sweep's own
    process) the job returns its outcome as before."""
    if code and type(_job_environment()).__name__ == "SlurmJobEnvironment":
        sys.stdout.flush()
        sys.stderr.flush()
        raise SystemExit(code)  # not an Exception: submitit's job wrapper lets it end the task


def _job_environment():
    try:
        return submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job
        return None


def set_aside_failure(run_dir: Path) -> None:
    """A run that starts again keeps its old failure record beside it, not as its state."""
    failure = run_dir / FAILURE_FILENAME
    if failure.exists():
        failure.replace(run_dir / f"failure.{time.strftime('%Y%m%dT%H%M%S')}.json")


def _outcome(run: Path, code: int) -> dict:
    if (run / RESULT_FILENAME).exists():
        return {"status": "done", "code": code}
    if (run / FAILURE_FILENAME).exists():
        return {"status": read_json(run / FAILURE_FILENAME).get("status", "failed"), "code": code}
    return {"status": "failed", "code": code}


def _log_error_line() -> str:
    """The last error line of this job's own stderr log ("" outside a submitit job with logs)."""
    try:
        paths = submitit.JobEnvironment().paths
    except (RuntimeError, KeyError):  # not a submitit job, or the debug executor (no log files)
        return ""
    sys.stderr.flush()
    return last_error_line(str(paths.stderr))


def _export_distributed_env() -> None:
    """Set RANK/WORLD_SIZE/MASTER_* from the submitit job, as torch's env:// init expects."""
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:
        return  # not inside a submitit job (called directly): the trainer sets its own defaults
    if type(env).__name__ == "DebugJobEnvironment":
        # In-process debug jobs have one rank and no job id to derive a port from.
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())})
        return
    for key in DIST_VARS:
        os.environ.pop(key, None)
    # submitit would draw the port from 20000-60000, which overlaps Linux's ephemeral range
    # (32768-60999): an outgoing connection on the node can hold it, and the rendezvous then
    # dies with EADDRINUSE. Our agreed port lies below that range; every task derives the same.
    job_id = os.environ.get("SLURM_JOB_ID") or str(env.job_id)
    if job_id.isdigit():
        os.environ["MASTER_PORT"] = str(job_port(int(job_id)))
    # GPUs stay visible to every rank: DeepSpeed picks the device from LOCAL_RANK itself.
    # overwrite: submitit reads our MASTER_PORT when constructed, then refuses to export over it.
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"
