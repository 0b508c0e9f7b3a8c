"""What --resume may change: everything else must equal the checkpoint's configuration.

A resumed run continues the optimizer, scheduler, data position and RNG of the checkpoint, so
an option that defines the run (method and its options, tasks, data, learning rates, batch,
seed, backbone, DeepSpeed layout...) cannot take a new value there: the run would record one
value and train with another. The comparison is over every TrainConfig field, so a field added
later is run-defining unless it is listed here.

May change on resume (and takes effect from the resumed step on):
  max_steps, epochs   a longer run; the linear schedule is re-stretched to the new length
                      (never behind the checkpoint's step)
  eval_every, save_every, save_attention, eval_batch_size
  output_dir, resume, overwrite, dist_timeout
  data_dir, cache_dir, no_data_cache, model_path   where the same files live on this machine
  gpu_mem_cap, nvme_path, activation_checkpointing  memory settings (same arithmetic)
"""

from __future__ import annotations

MAY_CHANGE_ON_RESUME = frozenset({
    "max_steps", "epochs", "eval_every", "save_every", "save_attention", "eval_batch_size",
    "output_dir", "resume", "overwrite", "dist_timeout",
    "data_dir", "cache_dir", "no_data_cache", "model_path",
    "gpu_mem_cap", "nvme_path", "activation_checkpointing",
})

_MISSING = object()


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def differences(saved: dict, now: dict) -> list[str]:
    """`--option saved -> now` for each run-defining field whose value differs."""
    out = []
    for name in sorted(set(saved) | set(now)):
        if name in MAY_CHANGE_ON_RESUME:
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
