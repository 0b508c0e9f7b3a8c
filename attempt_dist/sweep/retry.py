"""Retry by cause: what a sweep does when one of its cells' jobs ends without result.json.

    cause           how it is known                       what the sweep does
    preempted       SLURM ended the job PREEMPTED         requeue: same layout, resumes from its checkpoints
    time limit      SLURM ended the job TIMEOUT           requeue
    node failure    SLURM ended the job NODE_FAIL         requeue
    rank lost       exit 5 (a collective timed out)       requeue
    out of memory   exit 3, or failure.json status oom    re-plan: the next smaller layout (below), and retry
    diverged        exit 4                                no retry: the reason says where the last good checkpoint is
    bad input       exit 2                                no retry: fix the sweep file or the data
    failed          anything else                         no retry

SLURM and submitit requeue preempted and timed-out jobs in place first (executor `requeues`);
the sweep resubmits what still ended so. Retries are bounded per cell by the executor's
`max_retries`. Every decision (each retry and the give-up) is appended to the cell's
RUN/cells/<cell>/retries.json (cause, time, exit code, action, the layout the retry runs with);
`sweep status` shows them, and a relaunch keeps a re-planned layout.

Re-planning after out of memory takes one rung per retry, the first that applies, each keeping
the effective batch (micro-batch x accumulation):
    1. halve the micro-batch, double the accumulation (an even micro-batch above 1)
    2. activation checkpointing
    3. offload: ZeRO-3 with optimizer state and parameters in host memory (zero3_offload)
A re-planned run resumes from the cell's checkpoints where --resume allows it (another
micro-batch x accumulation at the same batch, checkpointing); after the offload rung (another
ZeRO layout, which DeepSpeed cannot load) it starts afresh, the old checkpoints set aside.
A `--ds-config auto` cell was laid out by the planner already: its retry asks the planner again
with activation checkpointing required; after that, or when no rung is left, the cell gives up
with the reason its run gave (for auto: the planner's "nothing fits").
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic_files import write_json_atomic
from ..finished.record import FAILURE_FILENAME
from .state import RETRIES_FILENAME, CellState, cell_dir, cell_run_dir, read_history, read_json_or_empty

if TYPE_CHECKING:  # spec imports the methods, and so torch: `sweep status` reads this module without it
    from .spec import Cell

# The trainer's exit codes (training/failure.py, not imported here: `sweep status` must not load torch).
EXIT_BAD_INPUT, EXIT_OOM, EXIT_DIVERGED, EXIT_RANK_LOST = 2, 3, 4, 5
REQUEUE_CAUSES = ("preempted", "time limit", "node failure", "rank lost")
_SLURM_END = {"PREEMPTED": "preempted", "TIMEOUT": "time limit", "NODE_FAIL": "node failure"}
_BY_EXIT = {EXIT_RANK_LOST: "rank lost", EXIT_OOM: "out of memory", EXIT_DIVERGED: "diverged",
            EXIT_BAD_INPUT: "bad input"}
OFFLOAD_CONFIG = "zero3_offload"
_OFFLOADED = (OFFLOAD_CONFIG, "zero3_nvme")
CHECKPOINTS_DIR = "checkpoints"  # the trainer's, in its run folder (training/checkpoint.py; not imported: no torch here)


@dataclass(frozen=True)
class Decision:
    cause: str
    action: str            # "requeue", "re-plan" or "give up"
    note: str              # what changed, or why not
    layout: dict | None    # the train options the retry runs with (re-plan), else None
    exit_code: int | None


def cause_of(run: Path, state: CellState) -> tuple[str, int | None]:
    """(cause, exit code) of a cell that ended without result.json."""
    failure = cell_run_dir(run, state.name) / FAILURE_FILENAME
    record = read_json_or_empty(failure) if failure.exists() else {}
    code = record.get("exit_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if code in _BY_EXIT:
        return _BY_EXIT[code], code
    if record.get("status") == "oom" or state.status == "oom":
        return "out of memory", code
    ended = re.search(r"\bended ([A-Z_]+)", state.detail or "")
    if ended and ended.group(1) in _SLURM_END:
        return _SLURM_END[ended.group(1)], code
    return "failed", code


def decide(cell: Cell, cause: str, exit_code: int | None, retried: int) -> Decision:
    """What to do about a cell that ended by `cause`, after `retried` earlier retries."""
    limit = cell.executor.max_retries
    if cause in REQUEUE_CAUSES or cause == "out of memory":
        if retried >= limit:
            return Decision(cause, "give up", f"max_retries {limit} reached", None, exit_code)
    if cause in REQUEUE_CAUSES:
        return Decision(cause, "requeue", "resumes from its last checkpoint", None, exit_code)
    if cause == "out of memory":
        layout, note = smaller_layout(cell.train)
        if layout is None:
            return Decision(cause, "give up", note, None, exit_code)
        return Decision(cause, "re-plan", note, layout, exit_code)
    return Decision(cause, "give up", "not retried: the same run would end the same way", None, exit_code)


def smaller_layout(train: dict) -> tuple[dict | None, str]:
    """The next rung of the out-of-memory ladder for train options `train`: (options, what
    changed), or (None, why nothing is left)."""
    from ..training.config import TrainConfig

    defaults = TrainConfig()
    micro = int(train.get("batch_size", defaults.batch_size))
    accum = int(train.get("grad_accum", defaults.grad_accum))
    checkpointing = bool(train.get("activation_checkpointing", defaults.activation_checkpointing))
    ds_config = str(train.get("ds_config", defaults.ds_config))
    if ds_config == "auto":
        if not checkpointing:
            return {**train, "activation_checkpointing": True}, "the planner again, with activation checkpointing"
        return None, "nothing fits: the planner's layout with activation checkpointing ran out of memory"
    if micro > 1 and micro % 2 == 0:
        return ({**train, "batch_size": micro // 2, "grad_accum": accum * 2},
                f"micro-batch {micro} x {accum} -> {micro // 2} x {accum * 2}")
    if not checkpointing:
        return {**train, "activation_checkpointing": True}, "activation checkpointing"
    if ds_config not in _OFFLOADED:
        return {**train, "ds_config": OFFLOAD_CONFIG}, f"offload: {ds_config} -> {OFFLOAD_CONFIG}"
    return None, (f"nothing fits: micro-batch {micro}, activation checkpointing and {ds_config} offload all tried; "
                  "lower the batch, use more GPUs or a larger --gpu-mem-cap")


class Retrier:
    """Decides, records and returns the retry of each cell that ended without result.json."""

    def __init__(self, run: Path) -> None:
        self.run = Path(run)

    def after_end(self, cell: Cell, state: CellState) -> tuple[Cell | None, Decision | None]:
        """(the cell to submit again or None, the decision; None for a cell that is done)."""
        if state.status == "done":
            return None, None
        history = read_history(self.run, cell.name)
        cause, code = cause_of(self.run, state)
        retried = sum(entry.get("action") in ("requeue", "re-plan") for entry in history)
        decision = self._start_afresh(cell, decide(cell, cause, code, retried))
        record(self.run, cell.name, decision, state)
        if decision.action == "requeue":
            return cell, decision
        if decision.action == "re-plan":
            return dataclasses.replace(cell, train=decision.layout), decision
        return None, decision

    def _start_afresh(self, cell: Cell, decision: Decision) -> Decision:
        """A re-plan's run resumes from the cell's checkpoints (jobs.py), which --resume allows for
        another micro-batch x accumulation at the same batch and for checkpointing; DeepSpeed loads
        a checkpoint only into the ZeRO layout that wrote it, so a new `ds_config` (the offload
        rung) starts afresh, its old checkpoints kept aside and the reason recorded."""
        if decision.action != "re-plan":
            return decision
        from ..training.config import TrainConfig

        default = TrainConfig().ds_config
        old, new = cell.train.get("ds_config", default), decision.layout.get("ds_config", default)
        checkpoints = cell_run_dir(self.run, cell.name) / CHECKPOINTS_DIR
        if new == old or not checkpoints.is_dir() or not any(checkpoints.iterdir()):
            return decision
        aside = checkpoints.with_name(f"{CHECKPOINTS_DIR}.{old}.{time.strftime('%Y%m%dT%H%M%S')}")
        checkpoints.replace(aside)
        return dataclasses.replace(decision, note=f"{decision.note}; starts afresh: DeepSpeed loads a {old} "
                                                  f"checkpoint only under {old} (kept in {aside.name})")


def record(run: Path, name: str, decision: Decision, state: CellState) -> None:
    entries = read_history(run, name) + [{
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "cause": decision.cause, "exit_code": decision.exit_code,
        "job_id": state.job_id, "action": decision.action, "note": decision.note, "layout": decision.layout,
        "reason": state.detail[:300],
    }]
    write_json_atomic(cell_dir(run, name) / RETRIES_FILENAME, {"retries": entries})


def with_recorded_layout(run: Path, cell: Cell) -> Cell:
    """The cell with the layout its last re-plan chose (a relaunch keeps it), else as it is."""
    layouts = [e["layout"] for e in read_history(run, cell.name) if e.get("action") == "re-plan" and e.get("layout")]
    return dataclasses.replace(cell, train=layouts[-1]) if layouts else cell


def summary(entries: list[dict]) -> str:
    """One line for `sweep status`: each decision, oldest first."""
    return "; ".join(f"{e.get('cause')} -> {e.get('action')}" + (f" ({e['note']})" if e.get("note") else "")
                     for e in entries)

