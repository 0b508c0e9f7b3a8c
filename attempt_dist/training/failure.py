"""How a training run fails: a diverged loss or update detected (Diverged), and how the run then
ends: failure.json (status, reason, config) and its exit code.

Exit codes: 0 done (result.json written), 2 bad input (a UserError: one error line, no
failure.json), 3 out of memory under the cap (failure.json written), 4 the loss diverged (the
last good checkpoint is kept), 5 a rank stopped answering: a collective waited --dist-timeout
seconds (failure.json written; rerun with --resume), 130 Ctrl-C (one line naming the last
complete checkpoint to --resume from, no failure.json; run_ending.py). An --overwrite run that
fails before its first checkpoint gets the run it replaced back instead of a failure.json.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint as ckpt
from .. import distributed as dist
from ..planning.auto import DoesNotFit
from ..atomic_files import write_json_atomic
from ..errors import EXIT_INTERRUPTED  # noqa: F401 - the table's last code, kept where no torch is imported
from ..finished.record import FAILURE_FILENAME, RunFailure

EXIT_OOM, EXIT_DIVERGED, EXIT_STALLED = 3, 4, 5


class Diverged(RuntimeError):
    """The loss became non-finite or an update overflowed: training stops at the last good checkpoint."""


def read_step_loss(loss_window, step: int) -> float:
    """The step's one host sync, before its update: Diverged when any rank's loss of any
    micro-batch of optimizer step `step` was not finite; else this rank's last micro-batch loss."""
    import math

    finite, losses = loss_window.read()
    if not finite:
        shown = next((value for value in losses if not math.isfinite(value)), losses[-1])
        raise Diverged(f"the loss became {shown} at step {step}")
    return losses[-1]


def optimizer_step(engine, group_lrs: dict[str, float]) -> None:
    """engine.step(); an update past float32's range (e.g. --lr 1e38) is a divergence."""
    try:
        engine.step()
    except RuntimeError as err:
        if "without overflow" not in str(err):
            raise
        raise Diverged(f"the update overflowed at step {engine.global_steps + 1} "
                       f"(learning rates {sorted(set(group_lrs.values()))})") from None


@dataclass(frozen=True)
class Failure:
    status: str  # failure.json's: "oom" or "failed"
    reason: str
    exit_code: int
    any_rank: bool = False
    """Every rank that sees it writes it (a stalled rank: rank 0 may be the one that is gone)."""


def failure_of(err: BaseException, cfg) -> Failure | None:
    """What `err`, raised by a run of `cfg`, makes of it; None when it is no run failure (a bug:
    the caller re-raises it)."""
    if isinstance(err, DoesNotFit):  # --ds-config auto found no layout under the cap: before any weights loaded
        return Failure("oom", str(err), EXIT_OOM)
    if isinstance(err, Diverged):
        tag = ckpt.latest_tag(cfg.output_dir)
        where = (f"the last good checkpoint is {Path(cfg.output_dir) / 'checkpoints' / tag}; lower --lr or resume "
                 "with --resume" if tag else "no checkpoint was saved; lower --lr and rerun")
        return Failure("failed", f"{err}; training stopped, {where}", EXIT_DIVERGED)
    if dist.is_collective_timeout(err):
        return Failure("failed", f"rank {os.environ.get('RANK', '0')} lost another rank (a collective failed or "
                                 f"waited past --dist-timeout {cfg.dist_timeout:g} s: a rank stopped or died); "
                                 "rerun with --resume auto to continue from the last checkpoint, if one was saved",
                       EXIT_STALLED, any_rank=True)
    if dist.is_oom(err):
        return Failure("oom", f"{cfg.model} {cfg.method} with batch {cfg.batch_size} {dist.OOM_HINT}", EXIT_OOM)
    return None


def record_failure(cfg, failure: Failure) -> None:
    """failure.json in the run folder, and the reason as the error line (rank 0, or any_rank)."""
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 or failure.any_rank:
        write_json_atomic(Path(cfg.output_dir) / FAILURE_FILENAME,
                          RunFailure(status=failure.status, reason=failure.reason, config=cfg.to_dict(),
                                     exit_code=failure.exit_code).to_json())
        print(f"error: {failure.reason}", file=sys.stderr, flush=True)
