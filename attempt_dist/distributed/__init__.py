"""DeepSpeed layer: rank/world from any launcher, ZeRO config assembly, memory cap, engine.

    from attempt_dist import distributed as dist
    info = dist.init_distributed()                      # deepspeed / torchrun / submitit / python
    cfg = dist.load_ds_config("zero2_offload", micro_batch_size=8, grad_accum=1,
                              world_size=info.world_size)
    with dist.backbone_init_context(cfg):               # partitions at build time under ZeRO-3
        model = build_model()
    engine = dist.initialize_engine(model, optimizer, scheduler, cfg)

Split by job: env.py (ranks, process group, collectives), config.py (JSON configs),
memory.py (size strings, GPU cap, peak memory, OOM detection), engine.py (ZeRO-3 model
construction, deepspeed.initialize, parameter gathering, gather-once generation under ZeRO-3),
in_process.py (a run inside a process that goes on leaves no process group or rank variables).
"""

from .config import load_ds_config, shipped_config, shipped_config_names, zero_stage
from .engine import (
    EVAL_GATHER_ENV,
    backbone_init_context,
    gathered,
    gathered_for_generation,
    initialize_engine,
    needs_synced_gpus,
    numel,
    release_hf_deepspeed_config,
)
from .env import (
    DistInfo,
    add_launcher_args,
    all_gather_object,
    barrier,
    broadcast_object,
    ensure_distributed_env,
    free_port,
    init_distributed,
    is_collective_timeout,
    node_count,
    shutdown,
)
from .in_process import leaves_process_as_found
from .memory import OOM_HINT, apply_memory_cap, is_oom, memory_report, parse_size, sample_device_memory

__all__ = [
    "DistInfo",
    "EVAL_GATHER_ENV",
    "OOM_HINT",
    "add_launcher_args",
    "all_gather_object",
    "apply_memory_cap",
    "backbone_init_context",
    "barrier",
    "shutdown",
    "broadcast_object",
    "ensure_distributed_env",
    "free_port",
    "gathered",
    "gathered_for_generation",
    "init_distributed",
    "is_collective_timeout",
    "node_count",
    "initialize_engine",
    "is_oom",
    "leaves_process_as_found",
    "load_ds_config",
    "memory_report",
    "needs_synced_gpus",
    "numel",
    "parse_size",
    "release_hf_deepspeed_config",
    "sample_device_memory",
    "shipped_config",
    "shipped_config_names",
    "zero_stage",
]
