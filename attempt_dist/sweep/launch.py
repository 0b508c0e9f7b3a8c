"""Submit a sweep's jobs with submitit and (for local/debug executors) wait for them.

Order of work: library stages first (one per backbone and source set, only where SPoT or
ATTEMPT cells need one and it is not built yet), then the cells. On SLURM, cells that need a
library are submitted with `--dependency=afterok:<library job>`; with the local and debug
executors the sweep runs a small scheduler that starts a cell once its library is built and
keeps at most `array_parallelism` jobs alive. A cell whose result.json exists is skipped, as
are one that ran out of memory (unless retry_oom) and one whose job is still running or queued;
everything else is (re)submitted, and a cell with checkpoints resumes from them (jobs.py).
Ctrl-C ends the launch with one line; every submitted job is already in its job.json.

A local or debug launch may have a deadline for the whole run (`deadline_s`, `sweep --deadline`):
once it passes, the scheduler starts nothing more (each cell or library left gets failure.json
saying it was not started) and cancels its running local jobs (failure.json: cut at the
deadline). Neither counts as done, so the same command run again runs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from rich.console import Console
from rich.table import Table

from ..errors import UserError
from .. import source_library
from ..results import FAILURE_FILENAME, RESULT_FILENAME, SCHEMA_VERSION, write_json_atomic
from ..runlock import FolderLock
from .resolved import library_inputs
from .shared_library import link_shared_libraries
from .jobs import LIBRARY_DONE, CellJob, LibraryJob, set_aside_failure
from .spec import (Cell, ExecutorSpec, Library, Sweep, _executor_json, cell_prior, mem_gb, options_to_argv,
                   spot_input, train_argv)
from .state import cell_dir, cell_run_dir, library_dir, library_state, run_state

POLL_S = 1.0


@dataclass
class Plan:
    run: Path
    sweep: Sweep
    cells: list[Cell] = field(default_factory=list)        # to submit
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    libraries: list[Library] = field(default_factory=list)  # to build
    started: list[submitit.Job] = field(default_factory=list)  # submitted by this launch
    reported: set[str] = field(default_factory=set)  # cells whose end was printed


def plan(sweep: Sweep, run: Path, *, retry_oom: bool = False) -> Plan:
    out = Plan(Path(run), sweep)
    for cell in sweep.cells:
        state = run_state(cell_run_dir(run, cell.name), cell_dir(run, cell.name) / "job.json")
        if state.status == "done":
            out.skipped[cell.name] = "done"
        elif state.status == "oom" and not retry_oom:
            out.skipped[cell.name] = "oom (did not fit; --retry-oom to run again)"
        elif state.status == "running":
            out.skipped[cell.name] = f"running ({state.detail})"
        elif state.status == "pending" and state.job_id:  # queued, or requeued and held by SLURM
            out.skipped[cell.name] = f"queued ({state.detail})"
        else:
            out.cells.append(cell)
    needed = {c.library for c in out.cells if c.library}
    for key in sorted(needed):
        if library_state(run, key).status not in ("done", "running"):
            out.libraries.append(sweep.libraries[key])
    return out


def check_executor(spec: ExecutorSpec) -> None:
    if spec.kind == "slurm" and shutil.which("sbatch") is None:
        raise UserError("executor kind slurm, but SLURM is not here (no sbatch on PATH); "
                        "run with --executor local (or set executor: {kind: local}) on this machine")


def print_plan(p: Plan, console: Console) -> None:
    table = Table(title=f"sweep {p.sweep.name}: {len(p.sweep.cells)} cells -> {p.run}", show_lines=False)
    table.add_column("cell", no_wrap=True)
    for col in ("model", "method", "tasks", "seed", "action", "executor", "library", "options"):
        table.add_column(col, overflow="fold")
    todo = {c.name for c in p.cells}
    for cell in p.sweep.cells:
        action = "submit" if cell.name in todo else f"skip: {p.skipped.get(cell.name, '')}"
        opts = " ".join([f"{k}={v}" for k, v in cell.train.items() if k not in ("data_dir",)]
                        + [library_inputs(cell, p.sweep.libraries.get(cell.library))]).strip()
        table.add_row(cell.name, cell.model, cell.variant, ",".join(cell.tasks), str(cell.seed), action,
                      cell.executor.summary(), cell.library or "-", opts)
    console.print(table)
    if p.libraries:
        libs = Table(title="library stages (run before the cells that need them)")
        for col in ("library", "model", "sources", "stages", "executor"):
            libs.add_column(col, overflow="fold")
        for lib in p.libraries:
            libs.add_row(lib.key, lib.model, ",".join(lib.sources), _stages(lib), p.sweep.executor.summary())
        console.print(libs)
    console.print(f"{len(p.cells)} job(s) to submit, {len(p.skipped)} skipped, {len(p.libraries)} library stage(s)")


@dataclass(frozen=True)
class Deadline:
    """The whole run's deadline (local and debug executors): `seconds` after the launch began."""
    seconds: float
    at: float  # time.monotonic() when it passes

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def not_started(self) -> str:
        return (f"not started: the sweep's --deadline of {self.seconds:g} s was reached; "
                "run the same command again to run it")

    def cut(self) -> str:
        return f"cut at the sweep's --deadline of {self.seconds:g} s"


def launch(sweep: Sweep, run: Path, *, dry_run: bool = False, wait: bool | None = None,
           retry_oom: bool = False, console: Console | None = None, deadline_s: float | None = None) -> int:
    """Submit what is left of the sweep; return 0 when nothing failed (or nothing was waited on).

    deadline_s: seconds for the whole launch (local and debug executors only): cells and
    libraries not started by then are not started, running local jobs are cancelled; both get
    failure.json and run again on the next launch.

    One launch at a time owns the sweep run folder (a second exits 2 naming the first); a dry
    run only reads, so it needs no lock."""
    deadline = None
    if deadline_s is not None:
        if sweep.executor.kind == "slurm":
            raise UserError("--deadline is for the local and debug executors; on SLURM each job has its executor `time`")
        if deadline_s < 0:
            raise UserError(f"--deadline must be >= 0 seconds, got {deadline_s:g}")
        deadline = Deadline(float(deadline_s), time.monotonic() + deadline_s)
    if dry_run:
        return _launch(sweep, run, dry_run=True, wait=wait, retry_oom=retry_oom, console=console, deadline=deadline)
    with FolderLock(Path(run).resolve(), "sweep launch"):
        return _launch(sweep, run, dry_run=False, wait=wait, retry_oom=retry_oom, console=console, deadline=deadline)


def _launch(sweep: Sweep, run: Path, *, dry_run: bool, wait: bool | None, retry_oom: bool,
            console: Console | None, deadline: Deadline | None = None) -> int:
    console = console or Console()
    run = Path(run).resolve()
    if not dry_run:
        link_shared_libraries(sweep, run)
    p = plan(sweep, run, retry_oom=retry_oom)
    if dry_run:
        print_plan(p, console)
        return 0
    for spec in {c.executor for c in p.cells} | {sweep.executor}:
        check_executor(spec)
    _write_sweep_json(sweep, run)
    if not p.cells:
        console.print(f"nothing to do: all {len(sweep.cells)} cells are done or skipped")
        return 0
    try:
        with CtrlC() as ctrl_c:
            if sweep.executor.kind == "slurm":
                _submit_slurm(p, console)
                if not wait:
                    console.print(f"submitted; follow with: attempt-dist sweep status {run}")
                    return 0
            else:
                _run_scheduled(p, console, ctrl_c, deadline)
            return _wait_and_report(p, console, ctrl_c)
    except KeyboardInterrupt:
        return _interrupted(p, console)


class CtrlC:
    """Ctrl-C as a flag the polling loops check (`check()` raises KeyboardInterrupt there).

    Left to Python's default handler, the KeyboardInterrupt is raised wherever the main thread
    happens to be, and submitit's job polling can swallow it: the sweep then carried on as if
    the interrupted cell had simply failed (seen under load). Outside the main thread signals
    cannot be handled; the default behaviour stays."""

    def __init__(self) -> None:
        self.hit, self.previous = False, None

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, *_) -> None:
        self.hit = True

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _interrupted(p: Plan, console: Console) -> int:
    """Ctrl-C: local jobs (which got the same SIGINT) end and keep their checkpoints; SLURM
    jobs run on. Every job is recorded in its job.json, so a relaunch resumes what is left."""
    local = [job for job in p.started if isinstance(job, submitit.local.local.LocalJob)]
    for job in local:
        job.cancel(check=False)  # the terminal's SIGINT may not have reached a detached job
    deadline = time.time() + 60
    while any(not job.done() for job in local) and time.time() < deadline:
        time.sleep(0.2)
    states = [run_state(cell_run_dir(p.run, c.name), cell_dir(p.run, c.name) / "job.json") for c in p.sweep.cells]
    done = sum(s.status == "done" for s in states)
    still = "; its SLURM jobs keep running (scancel to stop them)" if p.sweep.executor.kind == "slurm" else ""
    console.print(f"interrupted: {done}/{len(states)} cells done{still}; run the same command again to resume "
                  f"the rest from their checkpoints (state: attempt-dist sweep status {p.run})", highlight=False)
    return 130


# --- local / debug: a small scheduler --------------------------------------------------------

def _run_scheduled(p: Plan, console: Console, ctrl_c: CtrlC, deadline: Deadline | None = None) -> None:
    queue: list[tuple[str, object]] = [("library", lib) for lib in p.libraries] + [("cell", c) for c in p.cells]
    running: list[tuple[str, object, submitit.Job]] = []
    building = {lib.key for lib in p.libraries}
    limit = p.sweep.executor.array_parallelism or 1
    while queue or running:
        ctrl_c.check()
        for item in list(running):
            if item[2].done():
                running.remove(item)
                if item[0] == "library":
                    building.discard(item[1].key)
                else:
                    _print_progress(p, console)
        if deadline is not None and deadline.passed():
            _stop_at_deadline(p, console, queue, running, deadline)
            return
        for entry in list(queue):
            if len(running) >= limit:
                break
            kind, obj = entry
            if kind == "cell" and obj.library:
                if obj.library in building or library_state(p.run, obj.library).status == "running":
                    continue  # wait for its library (ours, or one another launch builds: a shared one)
                if library_state(p.run, obj.library).status != "done":
                    queue.remove(entry)
                    _fail_without_running(p.run, obj, f"library stage {obj.library} failed; see {library_dir(p.run, obj.library)}")
                    continue
            queue.remove(entry)
            job = _submit_library(p, obj) if kind == "library" else _submit_cells(p, [obj])[0]
            console.print(f"started {kind} {getattr(obj, 'key', None) or obj.name} (job {job.job_id})")
            if p.sweep.executor.kind == "debug":
                job.result()  # debug jobs run in this process when asked for their result
            running.append((kind, obj, job))
        if queue or running:
            time.sleep(POLL_S if p.sweep.executor.kind != "debug" else 0)


def _fail_without_running(run: Path, cell: Cell, reason: str) -> None:
    write_json_atomic(cell_run_dir(run, cell.name) / FAILURE_FILENAME, {
        "schema": SCHEMA_VERSION, "status": "failed", "reason": reason, "config": cell.to_json(),
    })


def _stop_at_deadline(p: Plan, console: Console, queue: list, running: list, deadline: Deadline) -> None:
    """The run's deadline passed: nothing queued starts, running local jobs are cancelled.

    Each gets failure.json (a cell in its run folder, a library in its own), so `sweep status`
    and the next launch see them as failed, not done: the same command runs them again."""
    for kind, obj in queue:
        name = getattr(obj, "key", None) or obj.name
        if kind == "cell":
            _fail_without_running(p.run, obj, deadline.not_started())
        else:
            write_json_atomic(library_dir(p.run, obj.key) / "run" / FAILURE_FILENAME, {
                "schema": SCHEMA_VERSION, "status": "failed", "reason": deadline.not_started(),
                "config": {"library": obj.key}})
        console.print(f"not started: {kind} {name} (the sweep's --deadline of {deadline.seconds:g} s was reached)",
                      highlight=False, soft_wrap=True)
    queue.clear()
    for _, _, job in running:
        job.cancel(check=False)  # local jobs: SIGINT; the trainer stops, its checkpoints stay
    waited = time.time() + 60
    while any(not job.done() for _, _, job in running) and time.time() < waited:
        time.sleep(0.2)
    for kind, obj, job in running:
        name = getattr(obj, "key", None) or obj.name
        run_dir = library_dir(p.run, obj.key) / "run" if kind == "library" else cell_run_dir(p.run, name)
        finished = (library_dir(p.run, obj.key) / LIBRARY_DONE).exists() if kind == "library" \
            else (run_dir / RESULT_FILENAME).exists()
        if finished:  # it ended on its own just before the cut
            continue
        set_aside_failure(run_dir)  # the job's own "interrupted" record stays beside it
        write_json_atomic(run_dir / FAILURE_FILENAME, {
            "schema": SCHEMA_VERSION, "status": "failed", "reason": deadline.cut(),
            "config": obj.to_json() if kind == "cell" else {"library": obj.key}})
        console.print(f"cut: {kind} {name} (job {job.job_id}) at the sweep's --deadline of {deadline.seconds:g} s",
                      highlight=False, soft_wrap=True)
    running.clear()


# --- slurm -----------------------------------------------------------------------------------

def _submit_slurm(p: Plan, console: Console) -> None:
    lib_jobs = {lib.key: _submit_library(p, lib) for lib in p.libraries}
    # A library another launch is building (a shared one, or this sweep's earlier launch): after its job.
    elsewhere = {key: library_state(p.run, key) for key in {c.library for c in p.cells if c.library} - set(lib_jobs)}
    groups: dict[tuple, list[Cell]] = {}
    for cell in p.cells:
        building = elsewhere.get(cell.library)
        dep = lib_jobs[cell.library].job_id if cell.library in lib_jobs else \
            building.job_id if building is not None and building.status == "running" else None
        groups.setdefault((cell.executor, dep), []).append(cell)
    for (spec, dep), cells in groups.items():
        jobs = _submit_cells(p, cells, dependency=dep)
        console.print(f"submitted {len(jobs)} job(s) ({spec.summary()}{', after ' + dep if dep else ''})")


# --- submission ------------------------------------------------------------------------------

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
        if additional:
            params["slurm_additional_parameters"] = additional
    executor.update_parameters(**params)
    return executor


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


def _submit_cells(p: Plan, cells: list[Cell], dependency: str | None = None) -> list[submitit.Job]:
    jobs_to_make = []
    for cell in cells:
        folder = cell_dir(p.run, cell.name)
        run_dir = cell_run_dir(p.run, cell.name)
        inputs = library_args(p.run, cell, p.sweep.libraries.get(cell.library))
        argv = train_argv(cell, run_dir, inputs) + _fresh_start(run_dir)
        write_json_atomic(folder / "cell.json", cell.to_json())
        jobs_to_make.append((cell, folder, CellJob(p.sweep.trainer, argv, str(run_dir))))
    spec = cells[0].executor
    executor = make_executor(spec, p.run / "logs", cells[0].name if len(cells) == 1 else p.sweep.name, dependency)
    with _submitting(), _controller_output(spec.kind, p.run / "logs"):
        if len(jobs_to_make) > 1:
            with executor.batch():
                jobs = [executor.submit(job) for _, _, job in jobs_to_make]
        else:
            jobs = [executor.submit(jobs_to_make[0][2])]
        for (cell, folder, job_obj), job in zip(jobs_to_make, jobs):
            _record_job(folder / "job.json", job, spec, job_obj.argv, dependency)
        p.started.extend(jobs)
    return jobs


def _submit_library(p: Plan, lib: Library) -> submitit.Job:
    folder = library_dir(p.run, lib.key)
    run_dir = folder / "run"
    argv = library_argv(lib, run_dir)
    job_obj = LibraryJob(p.sweep.pipeline, argv, str(run_dir))
    spec = p.sweep.executor
    executor = make_executor(spec, p.run / "logs", f"library-{lib.key}")
    with _submitting(), _controller_output(spec.kind, p.run / "logs"):
        job = executor.submit(job_obj)
        _record_job(folder / "job.json", job, spec, argv, None)
        p.started.append(job)
    return job


def library_argv(lib: Library, run_dir: Path) -> list[str]:
    """The pipeline's argv for a library job: only the stages and priors its cells read."""
    options = {"model": lib.model, "sources": list(lib.sources), "targets": list(lib.probes or lib.targets),
               **lib.train, "output_dir": str(run_dir), "max_steps": lib.max_steps, "source_epochs": lib.epochs,
               "priors": list(lib.priors) or None, "stages": _stages(lib)}
    return options_to_argv(options)


def _stages(lib: Library) -> str:
    return ",".join(["sources"] + ["prior"] * lib.needs_prior + ["spot_g"] * lib.spot_g + ["probes"] * bool(lib.probes))


def _fresh_start(run_dir: Path) -> list[str]:
    """A retried cell starts over: its old failure record is kept aside, not read as its state."""
    set_aside_failure(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        return ["--overwrite"]
    return []


def _record_job(path: Path, job: submitit.Job, spec: ExecutorSpec, argv: list[str], dependency: str | None) -> None:
    history = []
    if path.exists():
        from ..results import read_json

        old = read_json(path)
        history = old.get("history", []) + [{"job_id": old.get("job_id"), "submitted_at": old.get("submitted_at")}]
    write_json_atomic(path, {
        "job_id": str(job.job_id), "kind": spec.kind, "folder": str(job.paths.folder),
        "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "executor": _executor_json(spec),
        "dependency": dependency, "argv": argv, "history": history,
    })


def _write_sweep_json(sweep: Sweep, run: Path) -> None:
    write_json_atomic(run / "sweep.json", {
        "name": sweep.name, "source": str(sweep.source) if sweep.source else None,
        "trainer": sweep.trainer, "pipeline": sweep.pipeline,
        "executor": _executor_json(sweep.executor),
        "cells": [c.to_json() for c in sweep.cells],
        "libraries": {k: {"model": l.model, "sources": list(l.sources), "needs_prior": l.needs_prior,
                          "stages": _stages(l), "priors": list(l.priors), "probes": list(l.probes)}
                      for k, l in sweep.libraries.items()},
    })
    if sweep.source:
        shutil.copyfile(sweep.source, run / "sweep.yaml")


# --- report ----------------------------------------------------------------------------------

def _print_progress(p: Plan, console: Console, states: list | None = None) -> None:
    """One line per cell that ended since the last call: n/N done, its score or reason."""
    states = states or [run_state(cell_run_dir(p.run, c.name), cell_dir(p.run, c.name) / "job.json") for c in p.cells]
    ended = [s for s in states if s.status in ("done", "failed", "oom") and s.name not in p.reported]
    done = sum(s.status == "done" for s in states) - sum(s.status == "done" for s in ended)
    for s in ended:
        p.reported.add(s.name)
        done += s.status == "done"
        what = s.score or "no score" if s.status == "done" else s.detail
        console.print(f"[{done}/{len(states)} done] {s.name} {s.status}: {what}", highlight=False, soft_wrap=True)


def _wait_and_report(p: Plan, console: Console, ctrl_c: CtrlC) -> int:
    while True:
        ctrl_c.check()
        states = [run_state(cell_run_dir(p.run, c.name), cell_dir(p.run, c.name) / "job.json") for c in p.cells]
        _print_progress(p, console, states)
        # Slurm jobs still queued count as pending with a job id: keep waiting for those too.
        if all(s.status != "running" and not (s.status == "pending" and s.job_id) for s in states):
            break
        for _ in range(5):
            time.sleep(POLL_S)
            ctrl_c.check()
    failed = [s for s in states if s.status in ("failed", "oom", "pending")]
    for s in failed:
        console.print(f"[red]{s.status}[/] {s.name}: {s.detail}", highlight=False)
    done = sum(s.status == "done" for s in states)
    console.print(f"{done}/{len(states)} submitted cells done; {len(failed)} not")
    return 1 if failed else 0
