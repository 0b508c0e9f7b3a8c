"""What a `--ds-config auto` cell asks SLURM for: the planner's host memory, checked against the nodes.

A cell whose ranks let the planner choose their layout is planned here as they will plan it
(planning/auto.py: the same request, for the executor's nodes x tasks per node ranks, under
the cell's --gpu-mem-cap; cuda with GPUs, else the CPU path), with a node's memory as the
host limit, when the sweep is launched or dry-run. The job then asks SLURM for

    mem = the node's share of the plan's host bytes (offloaded optimizer state and weights)
          + per rank on the node: the process itself (RANK_PROCESS_BYTES) and the backbone as it
            is loaded, in fp32, before DeepSpeed places it (on the CPU path: the plan's whole
            peak, which includes it)

rounded up to a GiB, with the executor's GPUs per node (the ranks the plan was made for).
An executor block that gives `mem` keeps it, but a plan that needs more is refused. A cell
whose plan needs more than a node offers is refused before anything is queued, in one line
naming the cell, the need and the offer. The offer is the executor's `node_mem` (sweep file,
--executor-file, --node-mem), else the largest node of its partition by `sinfo`, else unknown
(nothing to check against: the dry run says so).

A GPU cell without --gpu-mem-cap is planned without a GPU cap (its GPUs' size is not known
here): give the cap so that the plan is the one its ranks will make.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import UserError
from .executor import ExecutorSpec, mem_gb
from .spec import DEFAULT_TRAINER, Cell, Sweep, train_argv
from .submit import library_args

GIB = 2**30
# Python, torch, DeepSpeed and the tokenised data of one rank: a t5-tiny CPU rank peaked at
# 0.43 GiB resident (ru_maxrss); CUDA's libraries add about a GiB on a GPU rank.
RANK_PROCESS_BYTES = 2 * GIB
FP32_BYTES = 4


@dataclass(frozen=True)
class HostPlan:
    """A cell's planned host memory per node, and what a node offers (None: unknown)."""
    cell: str
    layout: str
    need_bytes: int
    offer_bytes: int | None
    given_mem: str | None = None
    """The executor's own `mem`, which the job asks for instead."""

    @property
    def request(self) -> str:
        """The SLURM `mem` to ask for: the executor's, else the need rounded up to a GiB."""
        return self.given_mem or f"{math.ceil(self.need_bytes / GIB)}G"

    def line(self) -> str:
        return f"{self.cell}: {self.what()}"

    def what(self) -> str:
        offer = (f"a node offers {self.offer_bytes / GIB:.1f} GiB" if self.offer_bytes is not None
                 else "node memory unknown (no sinfo here; --node-mem gives it)")
        asked = f"mem={self.request}" + (" (the executor's)" if self.given_mem else "")
        return f"--ds-config auto plans {self.layout}, {self.need_bytes / GIB:.1f} GiB of host memory " \
               f"per node -> {asked}; {offer}"


def plan_lines(plans: list[HostPlan]) -> list[str]:
    """One line per distinct plan, in the cells' order: cells planned alike share a line (a
    Table 4 sweep is 21 cells of one plan, not 21 equal lines)."""
    by_what: dict[str, list[str]] = {}
    for plan in plans:
        by_what.setdefault(plan.what(), []).append(plan.cell)
    return [f"{cells[0]}: {what}" if len(cells) == 1 else f"{cells[0]} and {len(cells) - 1} more cell(s): {what}"
            for what, cells in by_what.items()]


def node_need(chosen: dict, params: dict, executor: ExecutorSpec, device: str) -> int:
    """Host bytes one node of the cell's job needs under the plan's `chosen` candidate."""
    tasks, world = executor.ntasks_per_node, executor.world_size
    offloaded = chosen["host_bytes"] * tasks / world  # the planner's host bytes are the whole job's
    loaded = chosen["peak_bytes"] if device == "cpu" else FP32_BYTES * (params["trainable"] + params["frozen"])
    return int(offloaded + tasks * (RANK_PROCESS_BYTES + loaded))


def plan_host(cell: Cell, cfg, offer_bytes: int | None) -> HostPlan:
    """The cell's plan under a host limit of `offer_bytes`; UserError naming the cell when nothing fits."""
    from ..distributed.memory import parse_size
    from ..planning.auto import DoesNotFit, choose, request_from_config
    from ..planning.planner import plan_memory

    spec = cell.executor
    device = "cuda" if spec.gpus_per_node else "cpu"
    cap = parse_size(cfg.gpu_mem_cap) if cfg.gpu_mem_cap else None
    request = dataclasses.replace(request_from_config(cfg, spec.world_size, cap_bytes=cap, device=device),
                                  host_mem=offer_bytes)
    report = plan_memory(request)
    try:
        chosen = choose(report, require_checkpointing=cfg.activation_checkpointing).to_dict()
    except DoesNotFit as err:
        raise UserError(f"cell {cell.name}: --ds-config auto: {err}") from None
    return HostPlan(cell.name, chosen["layout"], node_need(chosen, report.params, spec, device), offer_bytes,
                    spec.mem)


def node_memory(spec: ExecutorSpec) -> int | None:
    """Bytes of the largest node a cell's job may get: the executor's node_mem, else sinfo's
    (the partition's nodes), else None."""
    if spec.node_mem is not None:
        return int(mem_gb(spec.node_mem) * GIB)
    if shutil.which("sinfo") is None:
        return None
    command = ["sinfo", "-h", "-N", "-o", "%m"] + (["-p", spec.partition] if spec.partition else [])
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    sizes = [int(word.rstrip("+")) for word in out.stdout.split() if word.rstrip("+").isdigit()]
    return max(sizes) * 2**20 if out.returncode == 0 and sizes else None  # sinfo says MB (MiB)


def check_fits(plan: HostPlan, spec: ExecutorSpec) -> None:
    """Refuse a plan that needs more than a node offers, or than the executor's own `mem`."""
    if plan.offer_bytes is not None and plan.need_bytes > plan.offer_bytes:
        where = f"partition {spec.partition}" if spec.partition else "the cluster"
        raise UserError(f"cell {plan.cell} needs {plan.need_bytes / GIB:.1f} GiB of host memory per node "
                        f"(--ds-config auto: {plan.layout}), the nodes of {where} offer {plan.offer_bytes / GIB:.1f} GiB; "
                        "use more nodes or GPUs, a smaller batch, or another partition")
    if spec.mem is not None and plan.need_bytes > mem_gb(spec.mem) * GIB:
        raise UserError(f"cell {plan.cell} needs {plan.need_bytes / GIB:.1f} GiB of host memory per node "
                        f"(--ds-config auto: {plan.layout}), its executor asks for mem={spec.mem}; "
                        f"raise mem to {math.ceil(plan.need_bytes / GIB)}G or leave it out (the plan then sets it)")


def with_planned_memory(sweep: Sweep) -> tuple[Sweep, list[HostPlan]]:
    """The sweep with each SLURM `--ds-config auto` cell asking for its plan's host memory
    (refused when a node cannot hold it), and the plans."""
    if sweep.trainer != DEFAULT_TRAINER:
        return sweep, []  # a custom trainer's options are its own
    from .check import PLACEHOLDER_RUN, _RaisingParser
    from ..training.config import build_parser, config_from_args

    parser = build_parser(parser_class=_RaisingParser)
    offers: dict[ExecutorSpec, int | None] = {}
    plans, cells = [], []
    for cell in sweep.cells:
        if cell.executor.kind != "slurm" or cell.train.get("ds_config") != "auto":
            cells.append(cell)
            continue
        cfg = config_from_args(parser.parse_args(train_argv(cell, PLACEHOLDER_RUN / cell.name,
                                                          library_args(PLACEHOLDER_RUN, cell, sweep.libraries.get(cell.library)))))
        if cell.executor not in offers:
            offers[cell.executor] = node_memory(cell.executor)
        plan = plan_host(cell, cfg, offers[cell.executor])
        check_fits(plan, cell.executor)
        plans.append(plan)
        if cell.executor.mem is None:
            cell = dataclasses.replace(cell, executor=cell.executor.model_copy(update={"mem": plan.request}))
        cells.append(cell)
    return dataclasses.replace(sweep, cells=cells), plans
