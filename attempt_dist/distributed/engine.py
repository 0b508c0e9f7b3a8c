"""Model construction under ZeRO-3, deepspeed.initialize with the recipe's optimizer, gathering.

What was checked on the CPU (2 ranks, gloo; tests/test_distributed_multirank.py):
- A client torch.optim.AdamW with two param groups (prompts lr 0.3, gate lr 0.1) keeps both
  groups under stages 0, 2 (+ CPU offload) and 3 (+ CPU offload): ZeRO builds one flat fp32
  partition per group and steps the client optimizer with each group's own dict, so the
  first Adam step moves each group by its own lr. A client LambdaLR scheduler
  (get_linear_schedule_with_warmup) built on the client optimizer drives those same dicts.
- Frozen (requires_grad False) parameters may sit in the model: ZeRO-1/2 leave them alone,
  ZeRO-3 partitions them too; none of them changes.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator

from attempt_dist.errors import UserError

from .config import zero_stage

# transformers keeps only a weakref to the HfDeepSpeedConfig: this keeps it alive so that
# from_pretrained (and generate's synced_gpus default) see ZeRO-3 for the whole process.
_hf_ds_config: list[Any] = []


def release_hf_deepspeed_config() -> None:
    """Forget the ZeRO-3 marker for transformers (tests building several models in one process)."""
    if _hf_ds_config:
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        _hf_ds_config.clear()
        unset_hf_deepspeed_config()


@contextlib.contextmanager
def backbone_init_context(ds_config: dict) -> Iterator[None]:
    """Build models inside this so that ZeRO-3 partitions them as they are created.

    Under stage 3 no rank ever holds the whole backbone (t5-11b would not fit otherwise), and
    `from_pretrained` partitions too because an HfDeepSpeedConfig is kept alive. Other stages
    build normally (and forget a ZeRO-3 marker left by an earlier model in this process).
    """
    if zero_stage(ds_config) != 3:
        release_hf_deepspeed_config()
        yield
        return
    import deepspeed
    from transformers.integrations import HfDeepSpeedConfig

    from .env import init_distributed

    _check_nvme_ready(ds_config)
    init_distributed()  # zero.Init partitions across the process group, so it must exist
    _hf_ds_config[:] = [HfDeepSpeedConfig(ds_config)]
    with deepspeed.zero.Init(config_dict_or_path=ds_config):
        yield


def initialize_engine(
    model: Any,
    optimizer: Any,
    lr_scheduler: Any,
    ds_config: dict,
) -> Any:
    """deepspeed.initialize with the recipe's own optimizer and scheduler; returns the engine.

    optimizer: a torch optimizer over the trainable parameters only, one param group per
    learning rate. lr_scheduler: a scheduler built on that optimizer, a callable
    optimizer -> scheduler, or None. The engine steps the scheduler in engine.step().
    """
    import deepspeed

    from .env import init_distributed

    if optimizer is not None and "optimizer" in ds_config:
        raise UserError("the DeepSpeed config has an \"optimizer\" section but the recipe builds its own; remove the section")
    if lr_scheduler is not None and "scheduler" in ds_config:
        raise UserError("the DeepSpeed config has a \"scheduler\" section but the recipe builds its own; remove the section")
    _check_nvme_ready(ds_config)
    if optimizer is not None:
        for i, group in enumerate(optimizer.param_groups):
            if not group["params"]:
                # DeepSpeed drops empty groups; a scheduler built on the client optimizer then
                # pairs its per-group lambdas/base lrs with the wrong groups, silently.
                raise UserError(
                    f"optimizer param group {i} ({group.get('name', 'unnamed')}) has no parameters; leave it out"
                )
    init_distributed()
    before = [dict(lr=g["lr"], n=sum(p.numel() for p in g["params"])) for g in optimizer.param_groups] if optimizer else None
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=lr_scheduler,
        config=dict(ds_config),
        dist_init_required=False,
    )
    if before is not None:
        _check_groups_kept(engine, before)
    return engine


def _check_groups_kept(engine: Any, before: list[dict]) -> None:
    # A wrapper that merged or re-created the groups would silently train every group at one
    # learning rate (the reference implementation's bug); fail loudly instead.
    after = engine.optimizer.param_groups
    if len(after) != len(before) or any(a["lr"] != b["lr"] for a, b in zip(after, before)):
        raise RuntimeError(
            f"DeepSpeed changed the optimizer's param groups ({[b['lr'] for b in before]} -> "
            f"{[a['lr'] for a in after]}); per-group learning rates would be lost"
        )


def _check_nvme_ready(ds_config: dict) -> None:
    zero = ds_config.get("zero_optimization", {})
    if not any(isinstance(zero.get(k), dict) and zero[k].get("device") == "nvme" for k in ("offload_param", "offload_optimizer")):
        return
    from deepspeed.accelerator import get_accelerator

    builder = get_accelerator().create_op_builder("AsyncIOBuilder")
    if builder is None or not builder.is_compatible(verbose=False):
        raise UserError("NVMe offload needs DeepSpeed's async_io op, which needs libaio (apt install libaio-dev); or use zero3_offload")


def needs_synced_gpus(ds_config: dict) -> bool:
    """What to pass as generate(synced_gpus=...): True under ZeRO-3 with several ranks.

    Checked with 2 CPU ranks: if ranks stop generating at different lengths (eos, different
    max_new_tokens) with synced_gpus=False, the rank that finished first leaves the parameter
    all-gathers and the next collective mismatches (gloo aborts; NCCL would hang). transformers
    defaults synced_gpus to True only while an HfDeepSpeedConfig is alive, so say it explicitly.
    """
    from .env import _world_size

    return zero_stage(ds_config) == 3 and _world_size() > 1


def gathered(params: Iterable[Any], modifier_rank: int | None = None) -> contextlib.AbstractContextManager:
    """Whole values of possibly ZeRO-3-partitioned parameters inside the block.

    Needed to read (or, with modifier_rank, write) prompts and weights for saving and
    inspection. Parameters that ZeRO-3 never saw (stage 0-2, plain models) pass through.
    """
    params = list(params)
    if any(hasattr(p, "ds_id") for p in params):
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=modifier_rank)
    return contextlib.nullcontext()
