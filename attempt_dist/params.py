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
from .methods import PROMPT_METHODS, MethodInputs, apply_method, make_config, needs

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


def method_options(method: str, prompt_length: int, rank: int) -> dict:
    options = {}
    if method in PROMPT_METHODS:
        options["prompt_length"] = prompt_length
    if method == "attempt":
        options["rank"] = rank
    return options


def build_wrapped(model: str, method: str, *, device: str = "meta", prompt_length: int = 100, rank: int = 100,
                  num_tasks: int = 1, seed: int = 0, **method_kwargs):
    """(wrapped model, backbone parameters before wrapping), built as for training.

    device "meta": no memory, a fraction of a second even for t5-11b (counting, planning).
    A real device: random weights and random source prompts, built there directly (memory
    measurements; a GPU initialises t5-3b in a second, a CPU in a minute).
    """
    spec = get_spec(model)
    cfg = make_config(method, **method_options(method, prompt_length, rank), **method_kwargs)
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
            inputs.source_prompts = torch.randn(_COUNTING_SOURCES, prompt_length, spec.d_model)
        inputs.source_names = [f"source{i}" for i in range(_COUNTING_SOURCES)]
    return apply_method(method, backbone, cfg, inputs), backbone_total


def build_on_meta(model: str, method: str, **options):
    return build_wrapped(model, method, device="meta", **options)


def count_trainable(model: str, method: str, *, prompt_length: int = 100, rank: int = 100,
                    num_tasks: int = 1, **method_kwargs) -> ParamCount:
    wrapped, total = build_on_meta(model, method, prompt_length=prompt_length, rank=rank, num_tasks=num_tasks,
                                   **method_kwargs)
    trainable = wrapped.num_trainable()
    return ParamCount(model, method, num_tasks, trainable, trainable / num_tasks, total)
