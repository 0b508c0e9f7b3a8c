"""Rank and world size from any launcher, the process group, and small collectives.

Launchers and what they export:
  deepspeed launcher   RANK LOCAL_RANK WORLD_SIZE MASTER_ADDR MASTER_PORT (+ passes --local_rank=N)
  torchrun             the same five (+ LOCAL_WORLD_SIZE), no extra argument
  submitit             the same five once TorchDistributedEnvironment().export() ran
  srun                 SLURM's own variables only: the five are derived from them (slurm_env.py)
  plain python         nothing: deepspeed.init_distributed then tries MPI discovery and dies
                       with "No module named 'mpi4py'", so a lone process sets the five itself.
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass
from typing import Any

from attempt_dist.errors import UserError

from .slurm_env import env_int, node_name, slurm_step_env

# What ensure_distributed_env sets when a launcher did not (in_process.py puts them back after a run).
DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    is_main: bool


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (the one owner: launchers and tests pick MASTER_PORT here).

    Port 0 asks the kernel for an unused port; another process could take it before the
    rendezvous binds it, but for a single local rank nobody else is listening for it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env_int(name: str) -> int:
    return env_int(name, "fix the launcher environment")


def ensure_distributed_env() -> DistInfo:
    """Make sure RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are set; return them.

    A launcher's values are kept. With none of them set this is one process: it becomes rank 0
    of 1 on 127.0.0.1 with a free port. The tasks of an `srun` step take theirs from SLURM's
    variables (the first node of the step as MASTER_ADDR, a port agreed from the job id).
    Several tasks without the variables otherwise (MPI started them, or a batch script that
    SLURM_NTASKS says is 2 tasks but did not srun) is an error rather than N ranks that each
    think they are alone.
    """
    if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        step = slurm_step_env()
        if step is not None and int(step["WORLD_SIZE"]) > 1:
            for key, value in step.items():
                os.environ.setdefault(key, value)
    if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        for var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
            if os.environ.get(var, "1").isdigit() and int(os.environ.get(var, "1")) > 1:
                raise UserError(
                    f"{var}={os.environ[var]} tasks but RANK/WORLD_SIZE are not set; start each rank with "
                    "srun, the deepspeed launcher or torchrun, or export them (submitit: "
                    "TorchDistributedEnvironment().export(set_cuda_visible_devices=False))"
                )
        os.environ["RANK"] = "0"
        os.environ["WORLD_SIZE"] = "1"
    missing = [v for v in ("RANK", "WORLD_SIZE") if v not in os.environ]
    if missing:
        raise UserError(f"launcher environment sets only one of RANK/WORLD_SIZE (missing {missing[0]}); set both")
    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"RANK={rank} WORLD_SIZE={world_size} is not a valid rank/world pair")
    if "LOCAL_RANK" not in os.environ:
        # One node is the only case where the local rank follows from the global one.
        local = os.environ.get("SLURM_LOCALID")
        if local is None and world_size > 1 and os.environ.get("LOCAL_WORLD_SIZE") != str(world_size):
            raise UserError("LOCAL_RANK is not set for a multi-rank run; set it (torchrun and deepspeed do)")
        os.environ["LOCAL_RANK"] = local if local is not None else str(rank)
    if world_size == 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    else:
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise UserError(f"{var} is not set for a {world_size}-rank run; the launcher must export it")
    local_rank = _env_int("LOCAL_RANK")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, is_main=rank == 0)


def add_launcher_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Accept the --local_rank=N that the deepspeed launcher appends to the script's arguments.

    The value is ignored: LOCAL_RANK in the environment says the same thing and is what
    ensure_distributed_env reads.
    """
    parser.add_argument("--local_rank", "--local-rank", dest="launcher_local_rank", type=int,
                        default=None, help=argparse.SUPPRESS)
    return parser


def _skip_shm_comm_build() -> None:
    """Stop DeepSpeed compiling its shared-memory collective on the CPU accelerator.

    deepspeed.comm's TorchBackend builds the `deepspeed_shm_comm` C++ op (~30 s with g++, per
    fresh TORCH_EXTENSIONS_DIR) whenever it starts on the CPU accelerator, though only
    inference_all_reduce (AutoTP inference) uses it; training collectives go through gloo.
    DeepSpeed has no switch for it, so mark the op incompatible: build_shm_op() then returns
    None. Set ATTEMPT_DS_SHM_COMM=1 to let it build. No effect on CUDA (no such builder there).
    """
    if os.environ.get("ATTEMPT_DS_SHM_COMM") == "1":
        return
    import importlib

    # importlib, not `import deepspeed.comm.torch as m`: deepspeed.comm re-exports the real
    # torch under the name `torch`, so the attribute lookup of that form returns torch itself.
    ds_torch_comm = importlib.import_module("deepspeed.comm.torch")
    ds_torch_comm.build_shm_op = lambda: None


# How long a collective waits for the other ranks before this rank gives up (seconds). A
# stopped or hung rank would otherwise hold every other rank, and its GPUs, until the job's
# wall-time limit; ten minutes outlasts any collective of a healthy run (checkpoint writes
# of t5-11b included).
DEFAULT_DIST_TIMEOUT_S = 600.0
# How gloo and NCCL word a collective that timed out or whose peer went away.
_LOST_RANK_MARKERS = ("timed out", "timeout", "watchdog caught collective", "connection closed by peer",
                      "connection reset by peer", "communicator was aborted")


def is_collective_timeout(err: BaseException) -> bool:
    """Whether `err` is a collective that waited past the process group's timeout, or whose
    peer died (gloo, NCCL): another rank stopped, hung or was killed."""
    import torch.distributed as tdist

    kinds = (RuntimeError, getattr(tdist, "DistError", RuntimeError))
    return isinstance(err, kinds) and any(m in str(err).lower() for m in _LOST_RANK_MARKERS)


def init_distributed(timeout_s: float | None = None) -> DistInfo:
    """Start the process group once (gloo on CPU, nccl on GPU) and return this rank's place.

    timeout_s: how long any collective may wait (default DEFAULT_DIST_TIMEOUT_S); the first
    call starts the group, so the recipe calls this first with --dist-timeout.
    """
    import datetime

    import deepspeed
    import deepspeed.comm as ds_comm
    import torch

    info = ensure_distributed_env()
    if ds_comm.is_initialized():
        return info
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
        _skip_shm_comm_build()
    timeout = datetime.timedelta(seconds=timeout_s or DEFAULT_DIST_TIMEOUT_S)
    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False, timeout=timeout)
    return info


def group_is_up() -> bool:
    """Whether this process is in a process group (torch's default group exists)."""
    import torch.distributed as tdist

    return tdist.is_available() and tdist.is_initialized()


def _world_size() -> int:
    import torch.distributed as tdist

    return tdist.get_world_size() if group_is_up() else 1


def barrier() -> None:
    if _world_size() > 1:
        import torch.distributed as tdist

        tdist.barrier()


def shutdown() -> None:
    """Leave the process group on every rank before the process exits. Left to interpreter
    teardown, gloo's threads can abort a rank ("terminate called without an active exception",
    seen once on a 2-rank CPU run) after all its work is done."""
    barrier()
    leave_process_group()


def leave_process_group() -> None:
    """Destroy this process's group, with no barrier (shutdown() waits for the other ranks first).

    Through deepspeed.comm when DeepSpeed runs it: DeepSpeed keeps a clone of the world group
    (deepspeed.utils.groups, made at deepspeed.initialize), and only its own destroy_process_group
    drops that. Destroyed by torch alone, the clone outlives the group, and the next
    deepspeed.initialize in this process (a sweep's debug executor runs its cells one after
    another in process) fails with "Group ... is not registered".
    """
    import sys

    import torch.distributed as tdist

    if not group_is_up():
        return
    ds_comm = sys.modules.get("deepspeed.comm")
    if ds_comm is None or not ds_comm.is_initialized():
        tdist.destroy_process_group()
        return
    ds_comm.destroy_process_group()
    groups = sys.modules.get("deepspeed.utils.groups")
    if groups is not None and not hasattr(groups, "_release_process_group_references"):
        groups._WORLD_GROUP = None  # a DeepSpeed whose destroy_process_group does not drop its clone yet


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-item list at world size 1)."""
    size = _world_size()
    if size == 1:
        return [obj]
    import torch.distributed as tdist

    out: list[Any] = [None] * size
    tdist.all_gather_object(out, obj)
    return out


def node_count() -> int:
    """How many nodes the ranks run on (a collective: every rank calls it). Emulated SLURM
    nodes on one host count apart, by SLURM's node name."""
    return len(set(all_gather_object(node_name())))


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (the argument itself at world size 1)."""
    if _world_size() == 1:
        return obj
    import torch.distributed as tdist

    box = [obj]
    tdist.broadcast_object_list(box, src=src)
    return box[0]
