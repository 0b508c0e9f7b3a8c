"""Reading a parameter whole when ZeRO-3 may have partitioned it.

Under `deepspeed.zero.Init` each rank holds a shard (the local tensor has 0 elements); a
method that initialises prompts from the backbone's embedding must gather it first.
"""

from __future__ import annotations

import contextlib

import torch


def is_partitioned(param: torch.Tensor) -> bool:
    return hasattr(param, "ds_id")


@contextlib.contextmanager
def gathered(*params: torch.Tensor):
    partitioned = [p for p in params if is_partitioned(p)]
    if not partitioned:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None):
        yield


def full_copy(param: torch.Tensor) -> torch.Tensor:
    """A detached, whole copy of `param` (gathered under ZeRO-3)."""
    with gathered(param):
        return param.detach().clone()
