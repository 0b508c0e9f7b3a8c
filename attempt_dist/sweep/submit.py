"""The recipe's third step: jobs handed to submitit, each recorded in its job.json.

A job's command line (the trainer's for a cell, the pipeline's for a library stage) is built
here, its submitit executor made from the sweep's executor block, and once submitted the job is
written to RUN/cells/<cell>/job.json or RUN/library/<lib>/job.json (a resubmission keeps the
earlier ids in `history`). The expanded sweep goes to RUN/sweep.json. On SLURM, cells that need
a library are submitted with `--dependency=afterok:<library job>`; the local and debug
executors submit one job at a time from schedule.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import submitit
from rich.console import Console

from ..library import sources as source_library
from ..errors import UserError
from ..atomic_files import read_json, write_json_atomic
from .executor import executor_json, mem_gb
from .jobs import CellJob, LibraryJob, set_aside_failure
from .plan import SweepPlan
from .spec import Cell, ExecutorSpec, Library, Sweep, cell_prior, options_to_argv, spot_input, train_argv
from .state import cell_dir, cell_run_dir, library_dir, library_state


def check_executor(spec: ExecutorSpec) -> None:
    if spec.kind == "slurm" and shutil.which("sbatch") is None:
        raise UserError("executor kind slurm, but SLURM is not here (no sbatch on PATH); "
                        "run with --executor local (or set executor: {kind: local}) on this machine")


def check_executors(plan: SweepPlan) -> None:
    """Every executor the plan's jobs would use is here (SLURM needs sbatch)."""
    for spec in {c.executor for c in plan.cells} | {plan.sweep.executor}:
        check_executor(spec)


class Submitter:
    """Submits a plan's cells and libraries; `started` is every job this launch submitted,
    `submitted` the names of the cells among them."""

    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        self.started: list[submitit.Job] = []
        self.submitted: set[str] = set()

    def submit_cells(self, cells: list[Cell], dependency: str | None = None) -> list[submitit.Job]:
        run, sweep = self.plan.run, self.plan.sweep
        jobs_to_make = []
        for cell in cells:
            folder = cell_dir(run, cell.name)
            run_dir = cell_run_dir(run, cell.name)
            inputs = library_args(run, cell, sweep.libraries.get(cell.library))
            argv = train_argv(cell, run_dir, inputs) + _fresh_start(run_dir)
            write_json_atomic(folder / "cell.json", cell.to_json())
            jobs_to_make.append((folder, CellJob(sweep.trainer, argv, str(run_dir))))
        spec = cells[0].executor
        executor = make_executor(spec, run / "logs", cells[0].name if len(cells) == 1 else sweep.name, dependency)
        with _submitting(), _controller_output(spec.kind, run / "logs"):
            if len(jobs_to_make) > 1:
                with executor.batch():
                    jobs = [executor.submit(job) for _, job in jobs_to_make]
            else:
                jobs = [executor.submit(jobs_to_make[0][1])]
            for (folder, job_obj), job in zip(jobs_to_make, jobs):
                _record_job(folder / "job.json", job, spec, job_obj.argv, dependency)
            self.started.extend(jobs)
            self.submitted.update(cell.name for cell in cells)
        return jobs

    def submit_library(self, lib: Library) -> submitit.Job:
        run = self.plan.run
        folder = library_dir(run, lib.key)
        run_dir = folder / "run"
        argv = library_argv(lib, run_dir)
        spec = self.plan.sweep.executor
        executor = make_executor(spec, run / "logs", f"library-{lib.key}")
        with _submitting(), _controller_output(spec.kind, run / "logs"):
            job = executor.submit(LibraryJob(self.plan.sweep.pipeline, argv, str(run_dir)))
            _record_job(folder / "job.json", job, spec, argv, None)
            self.started.append(job)
        return job


def submit_slurm(submitter: Submitter, console: Console) -> None:
    """Every library and cell at once; SLURM holds a cell until its library job succeeded (ours,
    or the job of another launch still building it)."""
    plan = submitter.plan
    lib_jobs = {lib.key: submitter.submit_library(lib) for lib in plan.libraries}
    # A library another launch is building (a shared one, or this sweep's earlier launch): after its job.
    elsewhere = {key: library_state(plan.run, key)
                 for key in {c.library for c in plan.cells if c.library} - set(lib_jobs)}
    groups: dict[tuple, list[Cell]] = {}
    for cell in plan.cells:
        building = elsewhere.get(cell.library)
        dep = lib_jobs[cell.library].job_id if cell.library in lib_jobs else \
            building.job_id if building is not None and building.status == "running" else None
        groups.setdefault((cell.executor, dep), []).append(cell)
    for (spec, dep), cells in groups.items():
        jobs = submitter.submit_cells(cells, dependency=dep)
        console.print(f"submitted {len(jobs)} job(s) ({spec.summary()}{', after ' + dep if dep else ''})")


# --- command lines ---------------------------------------------------------------------------

def library_args(run: Path, cell: Cell, library: Library | None = None) -> dict:
    """The library options a cell's trainer gets: the prompts (ATTEMPT, SPoT-t), SPoT-g's prompt,
    SPoT-t's probes, and the B.1 prior (`library`: its sources decide which priors exist)."""
    if not cell.library:
        return {}
    lib = library_dir(run, cell.library) / "run"
    extra = {"source_prompts": str(lib / source_library.PROMPTS_DIR)}
    spot = spot_input(cell)
    if spot == "spot_g":
        extra["source_prompts"] = str(lib / source_library.SPOT_G_DIR)
    elif spot == "probes":
        extra["spot_probe"] = str(lib / source_library.PROBES_DIR)
    prior = cell_prior(cell, library.sources if library else None)
    if prior is not None:
        extra["prior"] = str(source_library.prior_file(lib, prior))
    return extra


def library_argv(lib: Library, run_dir: Path) -> list[str]:
    """The pipeline's argv for a library job: only the stages and priors its cells read."""
    options = {"model": lib.model, "sources": list(lib.sources), "targets": list(lib.probes or lib.targets),
               **lib.train, "output_dir": str(run_dir), "max_steps": lib.max_steps, "source_epochs": lib.epochs,
               "priors": list(lib.priors) or None, "stages": lib.stages}
    return options_to_argv(options)


def _fresh_start(run_dir: Path) -> list[str]:
    """A retried cell starts over: its old failure record is kept aside, not read as its state."""
    set_aside_failure(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        return ["--overwrite"]
    return []


# --- executors -------------------------------------------------------------------------------

def make_executor(spec: ExecutorSpec, folder: Path, name: str, dependency: str | None = None) -> submitit.Executor:
    # requeues: how often submitit requeues a job cut by its time limit (max_num_timeout; 0: never).
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=spec.kind, slurm_max_num_timeout=spec.requeues,
                                     local_max_num_timeout=spec.requeues)
    params = {"timeout_min": spec.time, "name": name}
    if spec.kind != "debug":
        params.update(nodes=spec.nodes, tasks_per_node=spec.ntasks_per_node, gpus_per_node=spec.gpus_per_node)
        if spec.cpus_per_task:
            params["cpus_per_task"] = spec.cpus_per_task
        if spec.mem:
            params["mem_gb"] = mem_gb(spec.mem)
    if spec.kind == "slurm":
        additional = dict(spec.additional)
        if dependency:
            additional["dependency"] = f"afterok:{dependency}"
        for key, value in (("partition", spec.partition), ("account", spec.account), ("qos", spec.qos),
                           ("constraint", spec.constraint), ("array_parallelism", spec.array_parallelism)):
            if value is not None:
                params[f"slurm_{key}"] = value
        if spec.setup:
            params["slurm_setup"] = list(spec.setup)
        # A task that fails ends its job's other tasks (jobs.py exits with the trainer's code):
        # a rank stopped on another node would otherwise hold the job until its time limit.
        params["slurm_srun_args"] = ["--kill-on-bad-exit=1"]
        if additional:
            params["slurm_additional_parameters"] = additional
    executor.update_parameters(**params)
    return executor


@contextmanager
def _submitting():
    """Around submitting jobs and recording them in job.json.

    Ctrl-C waits until the block ends: a job that was submitted is also recorded, so a
    relaunch never submits a second job into a folder that one still writes into.
    The environment is submitit's clean_env (no SLURM_* of an enclosing job leaks into the new
    one), but SLURM_CONF stays: it says where the cluster's configuration is, and sbatch cannot
    find a cluster configured outside /etc/slurm without it."""
    caught = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    keep = {k: os.environ[k] for k in ("SLURM_CONF",) if k in os.environ}
    try:
        with submitit.helpers.clean_env():
            os.environ.update(keep)
            yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@contextmanager
def _controller_output(kind: str, logs: Path):
    """submitit starts each local job's controller process with this process's stdout and
    stderr; at Ctrl-C it prints a KeyboardInterrupt traceback there, over the sweep's one line.
    It writes into RUN/logs/local-controllers.log instead (the jobs have their own logs)."""
    if kind != "local":
        yield
        return
    logs.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(logs / "local-controllers.log", "ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


# --- records ---------------------------------------------------------------------------------

def _record_job(path: Path, job: submitit.Job, spec: ExecutorSpec, argv: list[str], dependency: str | None) -> None:
    history = []
    if path.exists():
        old = read_json(path)
        history = old.get("history", []) + [{"job_id": old.get("job_id"), "submitted_at": old.get("submitted_at")}]
    write_json_atomic(path, {
        "job_id": str(job.job_id), "kind": spec.kind, "folder": str(job.paths.folder),
        "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "executor": executor_json(spec),
        "dependency": dependency, "argv": argv, "history": history,
    })


def write_sweep_json(sweep: Sweep, run: Path) -> None:
    """RUN/sweep.json: the expanded sweep (its cells, libraries, executor); RUN/sweep.yaml: its file."""
    write_json_atomic(run / "sweep.json", {
        "name": sweep.name, "source": str(sweep.source) if sweep.source else None,
        "trainer": sweep.trainer, "pipeline": sweep.pipeline,
        "executor": executor_json(sweep.executor),
        "cells": [c.to_json() for c in sweep.cells],
        "libraries": {k: {"model": l.model, "sources": list(l.sources), "needs_prior": l.needs_prior,
                          "stages": l.stages, "priors": list(l.priors), "probes": list(l.probes)}
                      for k, l in sweep.libraries.items()},
    })
    if sweep.source:
        shutil.copyfile(sweep.source, run / "sweep.yaml")
