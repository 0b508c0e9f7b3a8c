"""Which checkpoint --resume continues, and what --resume may change: everything else must equal
the checkpoint's configuration, and the data must be the data it trained on.

`--resume` (yes) needs a checkpoint; `--resume auto` (sweep cells, requeued jobs, pipeline
stages) starts the run when the folder has none. Either refuses a folder whose checkpoints are
all damaged rather than start again over them.

A resumed run continues the optimizer, scheduler, data position and RNG of the checkpoint, so
an option that defines the run (method and its options, tasks, data, learning rates, batch,
seed, backbone, DeepSpeed layout...) cannot take a new value there: the run would record one
value and train with another. The micro-batch x accumulation may be split otherwise at the same
product (STEP_SPLIT). The comparison is over every option of the run record, so an
option added later is run-defining unless its declaration says `may_change_on_resume=True`
(train_config.TrainConfig: a longer run, when to evaluate and save, where the same files live
on this machine, memory settings). Method options all define the run. The data is compared by
its fingerprint (run_data.py: each task's feature-cache key), so the same files at another
--data-dir resume, and other bytes in them (a relabelled train.jsonl) do not.
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


def checkpoint_to_resume(out: Path, mode: str, requested: dict, info) -> ckpt.TagCheck | None:
    """The newest intact checkpoint in `out`, checked to continue this same run (`requested`:
    its config as given); None when --resume is "no", or "auto" and the folder has none.

    Rank 0 decides (damaged tags named, the fallback said once) and every rank gets its
    verdict, so all ranks load the same tag or all exit 2.
    """
    if mode == "no":
        return None
    found, error = None, None
    if info.is_main:
        found, notes = ckpt.find_resumable(out)
        if found is None and notes:
            error = (f"--resume: no complete checkpoint in {ckpt.checkpoint_dir(out)} ({'; '.join(notes)}); "
                     "pass --overwrite to start again")
        elif found is None and mode == "yes":
            error = f"--resume: no checkpoint in {out}; start without --resume or use --resume auto"
        elif found is None:
            print(f"--resume auto: no checkpoint in {out} yet; starting the run", flush=True)
        else:
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


def check_continues(found: ckpt.TagCheck | None, total_steps: int, data: dict[str, str], info) -> None:
    """Once the data is loaded: the resumed checkpoint lies within this run's steps and was
    trained on this data (`data`: task -> fingerprint); rank 0 decides, every rank exits 2 alike."""
    if found is None:
        return
    error = None
    if info.is_main:
        error = _past_the_end(found, total_steps) or _other_data(found, data)
    error = dist.broadcast_object(error)
    if error:
        raise AgreedError(error)


def _past_the_end(found: ckpt.TagCheck, total_steps: int) -> str | None:
    if found.marker["step"] <= total_steps:
        return None
    return (f"--resume: the checkpoint is at step {found.marker['step']}, past this run's {total_steps} steps; "
            "give --max-steps (or --epochs) at least that")


def _other_data(found: ckpt.TagCheck, data: dict[str, str]) -> str | None:
    saved = found.marker.get("data")
    if not saved:  # written before checkpoints recorded their data: nothing to compare
        return None
    changed = [f"{task}: {saved.get(task, 'none')[:16]} -> {data.get(task, 'none')[:16]}"
               for task in sorted(set(saved) | set(data)) if saved.get(task) != data.get(task)]
    if not changed:
        return None
    return (f"--resume: the training data differs from the data {found.tag} was trained on (fingerprint at the "
            f"checkpoint -> now, {'; '.join(changed)}): its files, or the code that reads and tokenises them, "
            "changed. Point --data-dir at the data the run started with, or use a new --output-dir "
            "(or --overwrite) to train on this data")
