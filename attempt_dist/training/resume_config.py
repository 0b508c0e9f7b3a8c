"""Which checkpoint --resume continues, and what --resume may change: everything else must equal
the checkpoint's configuration.

A resumed run continues the optimizer, scheduler, data position and RNG of the checkpoint, so
an option that defines the run (method and its options, tasks, data, learning rates, batch,
seed, backbone, DeepSpeed layout...) cannot take a new value there: the run would record one
value and train with another. The micro-batch x accumulation may be split otherwise at the same
product (STEP_SPLIT). The comparison is over every option of the run record, so an
option added later is run-defining unless its declaration says `may_change_on_resume=True`
(train_config.TrainConfig: a longer run, when to evaluate and save, where the same files live
on this machine, memory settings). Method options all define the run.
"""

from __future__ import annotations

from pathlib import Path

from . import checkpoint as ckpt
from .. import distributed as dist
from ..errors import AgreedError
from .config import DECLARED_OPTIONS

MAY_CHANGE_ON_RESUME = frozenset(name for name, option in DECLARED_OPTIONS.items() if option.may_change_on_resume)

_MISSING = object()


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


# The micro-batch and the accumulation only split an optimizer step: a resumed run may split
# the same per-rank batch otherwise (the sweep's out-of-memory re-plan halves the micro-batch and
# doubles the accumulation); the sampler continues at the next example (data/sampler.py).
STEP_SPLIT = ("batch_size", "grad_accum")


def _same_step(saved: dict, now: dict) -> bool:
    try:
        return saved["batch_size"] * saved["grad_accum"] == now["batch_size"] * now["grad_accum"]
    except (KeyError, TypeError):
        return False


def differences(saved: dict, now: dict) -> list[str]:
    """`--option saved -> now` for each run-defining field whose value differs."""
    out = []
    resplit = _same_step(saved, now)
    for name in sorted(set(saved) | set(now)):
        if name in MAY_CHANGE_ON_RESUME or (resplit and name in STEP_SPLIT):
            continue
        old, new = saved.get(name, _MISSING), now.get(name, _MISSING)
        if old is _MISSING or new is _MISSING:
            # A field only one version of the code has (added, renamed): not comparable.
            continue
        if old != new:
            out.append(f"{_option(name)} {old!r} -> {new!r}")
    return out


def check(saved: dict, now: dict, *, checkpoint: str) -> str | None:
    """None when `now` may continue the run saved in `checkpoint`, else the one-line reason."""
    changed = differences(saved, now)
    if not changed:
        return None
    return (f"--resume continues {checkpoint}, which was trained with other values: {'; '.join(changed)}. "
            "Rerun with the checkpoint's values (see its config.json), or use a new --output-dir "
            "(or --overwrite) to start a different run")


def checkpoint_to_resume(out: Path, requested: dict, info) -> ckpt.TagCheck | None:
    """The newest complete checkpoint in `out`, checked to continue this same run (`requested`:
    its config as given); None when there is none yet.

    Rank 0 decides (damaged tags named, the fallback said once) and every rank gets its
    verdict, so all ranks load the same tag or all exit 2.
    """
    found, error = None, None
    if info.is_main:
        found, notes = ckpt.find_resumable(out)
        if found is None and notes:
            error = (f"--resume: no complete checkpoint in {ckpt.checkpoint_dir(out)} ({'; '.join(notes)}); "
                     "pass --overwrite to start again")
        elif found is not None:
            for note in notes:
                print(f"warning: {note}; resuming from {found.tag} (step {found.marker['step']}) instead", flush=True)
            error = check(found.marker.get("config", {}), requested,
                          checkpoint=str(ckpt.checkpoint_dir(out) / found.tag))
            saved_world = found.marker.get("world_size")
            if error is None and saved_world not in (None, info.world_size):
                error = (f"--resume: {found.tag} was written by {saved_world} ranks, this run has "
                         f"{info.world_size}; resume with {saved_world} ranks")
    found, error = dist.broadcast_object((found, error))
    if error:
        raise AgreedError(error)
    return found
