"""Model construction under ZeRO-3, deepspeed.initialize with the recipe's optimizer, gathering.

What was checked on the CPU (2 ranks, gloo; tests/test_distributed_multirank.py):
- A client torch.optim.AdamW with two param groups (prompts lr 0.3, gate lr 0.1) keeps both
  groups under stages 0, 2 (+ CPU offload) and 3 (+ CPU offload): ZeRO builds one flat fp32
  partition per group and steps the client optimizer with each group's own dict, so the
  first Adam step moves each group by its own lr. A client LambdaLR scheduler
  (get_linear_schedule_with_warmup) built on the client optimizer drives those same dicts.
- Frozen (requires_grad False) parameters may sit in the model: ZeRO-1/2 leave them alone,
  ZeRO-3 partitions them too; none of them changes.
- gathered_for_generation: under ZeRO-3, evaluation gathers every parameter once and generates
  with DeepSpeed's module hooks removed (no all-gather per decoding step); on 2 ranks the
  predictions equal the per-step path's and ranks that stop at different lengths do not hang
  (tests/test_eval_zero3.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterable, Iterator

from attempt_dist.errors import UserError

from .config import zero_stage

log = logging.getLogger("attempt_dist.distributed")

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
    # T5's modeling (and the torch modules it pulls in) is imported here, before zero.Init
    # patches torch.Tensor.__new__: imported under the patch, torch refuses a tensor subclass
    # ("Signature mismatch ... tensor_pynew"). backbones.py imports it lazily, at build time.
    from transformers import T5ForConditionalGeneration  # noqa: F401
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


# Test and benchmark hook: "never" keeps the per-decoding-step gathers of ZeRO-3 evaluation
# (to compare the two paths side by side); anything else, or unset, means "when it fits".
EVAL_GATHER_ENV = "ATTEMPT_DIST_EVAL_GATHER"
# Room left beside the whole weights for generation itself (encoder states, the decoder's
# key/value caches, logits) and allocator fragmentation: a fifth of the cap, at least 2 GiB.
GATHER_MARGIN_FRACTION = 0.2
GATHER_MARGIN_MIN_BYTES = 2 << 30


def _parameter_offload(engine: Any) -> Any:
    """The ZeRO-3 object that owns the module hooks, or None when the engine is not ZeRO-3."""
    optimizer = getattr(engine, "optimizer", None)
    offload = getattr(optimizer, "parameter_offload", None)
    if offload is None and hasattr(optimizer, "forward_hooks") and hasattr(optimizer, "module"):
        offload = optimizer  # a ZeRO-3 engine without an optimizer holds a DeepSpeedZeRoOffload
    return offload


def numel(param: Any) -> int:
    """Elements of a parameter held whole: a ZeRO-3 shard reports 0 elements, its ds_numel the whole count."""
    return int(getattr(param, "ds_numel", param.numel()))


def whole_parameter_bytes(module: Any) -> int:
    """Bytes of every parameter of `module` held whole (ZeRO-3 shards count at full size)."""
    return sum(numel(p) * p.element_size() for p in module.parameters())


def generation_gather_fits(module: Any, cap_bytes: int | None) -> bool:
    """Whether this rank can hold every parameter whole and still generate.

    The rule: on a GPU, whole parameter bytes (sum of ds_numel x element size, in the
    parameters' own dtype: bf16 on GPU) + what the allocator holds now + a margin (a fifth of
    the limit, at least 2 GiB) must stay under the limit, which is --gpu-mem-cap or else the
    device's total memory. On the CPU the partitions already live in host memory and there is
    no cap to respect: it fits. E.g. under 24 GiB, t5-3b (5.7 GB in bf16) fits and t5-11b
    (22.6 GB) falls back to per-step gathers.
    """
    import torch

    if not torch.cuda.is_available():
        return True
    limit = cap_bytes or torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    margin = max(GATHER_MARGIN_MIN_BYTES, int(GATHER_MARGIN_FRACTION * limit))
    return whole_parameter_bytes(module) + torch.cuda.memory_allocated() + margin <= limit


@contextlib.contextmanager
def gathered_for_generation(engine: Any, cap_bytes: int | None = None) -> Iterator[bool]:
    """Inside the block, engine.module generates on whole parameters with no ZeRO-3 hooks.

    Yields True when that is so (ZeRO-3, and every rank fits the whole parameters: see
    generation_gather_fits), False otherwise (ZeRO 0-2, a plain module, too big, or
    ATTEMPT_DIST_EVAL_GATHER=never): then nothing changed and ZeRO-3 gathers each layer per
    forward call as before, i.e. once per generated token.

    The established pattern (DeepSpeed's stage3.unwrap_model_for_generation, TRL's
    unwrap_model_for_generation): one GatheredParameters over all parameters, the parameter
    offload's forward/backward module hooks removed (and each parameter's record of the
    submodules using it cleared, or the release at exit refuses to free it), then the hooks
    re-registered with the module ids they had and everything partitioned again. With the
    hooks gone generate runs no collective, so ranks may stop at different lengths
    (generate(synced_gpus=False) inside the block). Read-only: a parameter written inside
    the block raises at exit (GatheredParameters with modifier_rank=None).
    """
    offload = _parameter_offload(engine)
    if offload is None or os.environ.get(EVAL_GATHER_ENV, "").lower() == "never":
        yield False
        return
    from .env import all_gather_object

    module = offload.module
    # Every rank must take the same path: the gather is a collective.
    fits = all(all_gather_object(generation_gather_fits(module, cap_bytes)))
    if not fits:
        log.info("evaluation keeps per-step ZeRO-3 gathers: %.2f GiB of whole parameters do not fit under the cap",
                 whole_parameter_bytes(module) / 2**30)
        yield False
        return
    import deepspeed
    from deepspeed.runtime.zero.partitioned_param_coordinator import iter_params

    root_id = getattr(module, "ds_id", 0)
    with deepspeed.zero.GatheredParameters(list(module.parameters())):
        for param in iter_params(module, recurse=True):
            param.ds_active_sub_modules.clear()
        for hook in [*offload.forward_hooks, *offload.backward_hooks]:
            hook.remove()
        offload.forward_hooks, offload.backward_hooks = [], []
        try:
            yield True
        finally:
            # The same ids as at initialize (the traversal order is fixed); this also
            # invalidates the prefetch trace, which the next training step records again.
            offload._register_deepspeed_module(module, count=[root_id])
