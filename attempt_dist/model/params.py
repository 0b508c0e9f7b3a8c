"""Per-task trainable parameter counts, from the real modules built on the meta device.

Nothing here is a hand formula: each backbone is built on `torch.device("meta")`, wrapped by
the method exactly as for training, and its trainable parameters are counted. With N target
tasks trained together (ATTEMPT-MT, or multi-task baselines) the shared parameters are
divided by N, as in the paper's Tables 2-3 and section 6.2: d(m + 2(r+1)/N) for ATTEMPT.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .backbones import build_backbone, get_spec
from ..methods import MethodInputs, apply_method, method_hook, needs
from ..methods.options import config_from_options
from ..shape_cache import cached

# Source prompts only shape ATTEMPT's frozen buffers; their number never changes the count.
# Six, as in the paper (MNLI, SST-2, QQP, QNLI, SQuAD, ReCoRD): the planner's buffers too.
_COUNTING_SOURCES = 6


@dataclass(frozen=True)
class ParamCount:
    model: str
    method: str
    num_tasks: int
    trainable: int
    """All trainable parameters of the run (every task's prompts plus shared modules)."""
    per_task: float
    """trainable / num_tasks: what each task costs to train and store."""
    total: int
    """Parameters of the backbone alone."""


def build_wrapped(model: str, method: str, *, device: str = "meta", num_tasks: int = 1, seed: int = 0,
                  **options):
    """(wrapped model, backbone parameters before wrapping), built as for training.

    options: method options by flag name (prompt_length=10, bottleneck=4, ...); the method's
    defaults otherwise, and those it does not have are ignored, as on the train command line.

    device "meta": no memory, a fraction of a second even for t5-11b (counting, planning).
    A real device: random weights and random source prompts, built there directly (memory
    measurements; a GPU initialises t5-3b in a second, a CPU in a minute).
    """
    spec = get_spec(model)
    cfg = config_from_options(method, options)
    if device == "meta":
        backbone = build_backbone(model, "meta")
    else:
        torch.manual_seed(seed)
        with torch.device(device):
            backbone = build_backbone(model, "random")
    backbone_total = sum(p.numel() for p in backbone.parameters())
    inputs = MethodInputs(num_tasks=num_tasks, seed=seed)
    if needs(method).library:
        with torch.device(device):
            inputs.source_prompts = torch.randn(_COUNTING_SOURCES, cfg.prompt_length, spec.d_model)
        inputs.source_names = [f"source{i}" for i in range(_COUNTING_SOURCES)]
    stand_in = method_hook(method, "stand_in_config")  # one that reads no input file (SPoT-t's probe)
    if stand_in is not None:
        cfg = stand_in(cfg, inputs.source_names or [])
    return apply_method(method, backbone, cfg, inputs), backbone_total


def build_on_meta(model: str, method: str, **options):
    return build_wrapped(model, method, device="meta", **options)


def count_trainable(model: str, method: str, *, num_tasks: int = 1, **options) -> ParamCount:
    """Counted on the meta device once per configuration and code version (shape_cache.py)."""
    def count() -> dict:
        wrapped, total = build_on_meta(model, method, num_tasks=num_tasks, **options)
        return {"trainable": wrapped.num_trainable(), "total": total}

    get_spec(model)  # an unknown backbone is refused before the cache is looked at
    config_from_options(method, options)  # so are an unknown method and bad options
    found = cached("params", {"model": model, "method": method, "num_tasks": num_tasks, "options": options}, count)
    return ParamCount(model, method, num_tasks, found["trainable"], found["trainable"] / num_tasks, found["total"])
