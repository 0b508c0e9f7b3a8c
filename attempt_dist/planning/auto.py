"""`--ds-config auto`: let the planner choose the DeepSpeed layout, checkpointing and micro-batch.

The requested per-rank batch is --batch-size x --grad-accum; the plan splits it into the
micro-batch x accumulation it recommends. It runs before any weights are loaded, so a run
that cannot fit stops at once (exit 3) and names the smallest cap that would do.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..errors import UserError
from .planner import Candidate, PlanReport, PlanRequest, plan_memory

AUTO = "auto"


class DoesNotFit(UserError):
    """No candidate fits under the cap (the train command exits 3 on it)."""


def ds_config_for(candidate: Candidate) -> dict[str, Any]:
    """The DeepSpeed config of a candidate, from the shipped ones (batch sizes still "auto")."""
    from ..distributed.config import shipped_config

    if candidate.stage == 0:
        return shipped_config("zero0")
    base = shipped_config("zero2_offload" if candidate.stage == 2 else "zero3_offload")
    zero = base["zero_optimization"]
    if not candidate.offload_optimizer:
        zero.pop("offload_optimizer", None)
        base.pop("zero_force_ds_cpu_optimizer", None)
    if not candidate.offload_param:
        zero.pop("offload_param", None)
    return base


def host_memory_bytes() -> int | None:
    """Physical memory of this machine (offload keeps optimizer state and weights there)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def request_from_config(cfg, world_size: int, *, cap_bytes: int | None, device: str) -> PlanRequest:
    from ..tasks import get_task

    max_length = cfg.max_length or max(get_task(t).max_length for t in cfg.tasks)
    return PlanRequest(model=cfg.model, method=cfg.method, batch_size=cfg.batch_size * cfg.grad_accum,
                       max_length=max_length, max_target_length=cfg.max_target_length,
                       options=dict(cfg.options), num_tasks=len(cfg.tasks),
                       world_size=world_size, gpu_mem_cap=cap_bytes, host_mem=host_memory_bytes(), device=device,
                       max_eval_examples=cfg.max_eval_examples)


def choose(report: PlanReport, *, require_checkpointing: bool = False) -> Candidate:
    """The fastest fitting candidate (with checkpointing when the user asked for it)."""
    fitting = [c for c in report.candidates if c.fits and (c.activation_checkpointing or not require_checkpointing)]
    if not fitting:
        reason = report.notes[0] if report.notes else (
            f"no configuration with activation checkpointing fits {report.request.model} {report.request.method}")
        raise DoesNotFit(f"{reason}; see `attempt-dist plan`")
    return min(fitting, key=lambda c: (c.step_seconds, c.peak_bytes))


def resolve(cfg, world_size: int, *, cap_bytes: int | None, device: str):
    """(the config with micro-batch, accumulation and checkpointing set, the DeepSpeed config
    dict, the plan summary for the run record)."""
    report = plan_memory(request_from_config(cfg, world_size, cap_bytes=cap_bytes, device=device))
    chosen = choose(report, require_checkpointing=cfg.activation_checkpointing)
    resolved = dataclasses.replace(cfg, batch_size=chosen.micro_batch, grad_accum=chosen.grad_accum,
                                   activation_checkpointing=chosen.activation_checkpointing,
                                   eval_batch_size=cfg.eval_batch_size or chosen.eval_batch)
    summary = {"request": dataclasses.asdict(report.request), "chosen": chosen.to_dict(),
               "params": report.params}
    return resolved, ds_config_for(chosen), summary
