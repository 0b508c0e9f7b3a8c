"""A run started inside a Python process that goes on afterwards leaves it as it found it.

The sweep's debug executor runs its cells (and library jobs) one after another in the sweep's
own process, and tests call the trainer in theirs. A run there makes itself rank 0 of 1 on a
free MASTER_PORT (env.ensure_distributed_env) and starts a process group that DeepSpeed
clones for its own use. Left behind, the next run inherits the variables, and a group that
torch no longer knows (destroyed by torch alone) made its deepspeed.initialize fail with
"Group ... is not registered".
"""

from __future__ import annotations

import functools
import os
from typing import Callable, TypeVar

from .env import DIST_VARS, group_is_up, leave_process_group

Entry = TypeVar("Entry", bound=Callable)


def leaves_process_as_found(entry: Entry) -> Entry:
    """Decorate an entry point (a trainer's main): after it, however it ended, the process group
    it started is gone and the rank variables are as before.

    A run that ended well has already left its group on every rank together (shutdown()); here
    only a group of one rank is left after a failure, as no other rank can be waiting on it. A
    multi-rank run that failed keeps its group: its process exits, and a barrier could wait for
    a rank that is gone. A group that existed before the entry (a caller's own) is not touched.
    """

    @functools.wraps(entry)
    def run_and_leave(*args, **kwargs):
        variables = {name: os.environ.get(name) for name in DIST_VARS}
        callers_group = group_is_up()
        try:
            return entry(*args, **kwargs)
        finally:
            if not callers_group and group_is_up() and _ranks() == 1:
                leave_process_group()
            for name, value in variables.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    return run_and_leave  # type: ignore[return-value]


def _ranks() -> int:
    import torch.distributed as tdist

    return tdist.get_world_size()
