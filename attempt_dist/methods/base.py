"""What every method shares: its config base class and the wrapper around the frozen backbone.

A method turns a frozen T5 into a `WrappedT5`. The wrapper's own forward builds the encoder
inputs (embed -> optional soft prompt -> concatenate, attention mask extended) and calls the
backbone with `inputs_embeds`; `generate` goes through the same path. Prompts and the
attention gate live in a submodule that is *called* in that forward, so ZeRO-3 gathers their
partitions correctly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .options import option


@dataclass
class MethodConfig:
    """Options every method has."""

    lr: float = option(3e-4, "learning rate of the method's main parameter group (fine-tuning's 3e-4: B.5 "
                             "prints 'x 10^-4' with its digit lost, and the authors' released fine-tuning "
                             "config uses 3e-4, as Adapter and BitFit do)", for_libraries=False)
    weight_decay: float = option(1e-5, "AdamW weight decay (the paper's for every method)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _positive_finite("lr", self.lr)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UserError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")


def _positive_finite(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a positive finite number, got {value!r}")


def positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")


class WrappedT5(nn.Module):
    """A frozen (or partly trainable) T5 plus an optional soft-prompt module.

    prompt: a module called as `prompt(input_embeds, attention_mask, task_ids)` returning
    `(prompt_embeds [B, m, d], attention_weights [B, k] or None)`.
    """

    def __init__(self, backbone: nn.Module, prompt: nn.Module | None = None, *,
                 method: str, num_tasks: int = 1) -> None:
        super().__init__()
        self.backbone = backbone
        self.prompt = prompt
        self.method = method
        self.num_tasks = num_tasks

    @property
    def config(self):
        return self.backbone.config

    def _task_ids(self, task_ids: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        if task_ids is None:
            if self.num_tasks > 1 and self.prompt is not None:
                # Never fall back to task 0's prompt: that silently scores every task with
                # the first task's prompt (a defect of the reference implementation).
                raise ValueError("a multi-task prompted model needs task_ids for every example")
            return torch.zeros(batch, dtype=torch.long, device=device)
        task_ids = task_ids.to(device=device, dtype=torch.long)
        # Checked on the CPU only: on a GPU, reading min/max back is a host sync on every forward
        # (an out-of-range id there still fails, as the prompt table's index error). Meta tensors
        # (the memory planner's shape-only runs) have no values to check.
        if task_ids.numel() and task_ids.device.type == "cpu" and (task_ids.min() < 0 or task_ids.max() >= self.num_tasks):
            raise ValueError(f"task_ids must lie in [0, {self.num_tasks}), got {task_ids.tolist()}")
        return task_ids

    def encoder_inputs(self, input_ids, attention_mask, task_ids=None):
        """(inputs_embeds, attention_mask, prompt attention weights or None)."""
        embeds = self.backbone.get_input_embeddings()(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape, dtype=torch.long, device=input_ids.device)
        if self.prompt is None:
            return embeds, attention_mask, None
        task_ids = self._task_ids(task_ids, input_ids.shape[0], input_ids.device)
        prompt, weights = self.prompt(embeds, attention_mask, task_ids)
        prompt = prompt.to(embeds.dtype)
        prompt_mask = attention_mask.new_ones(prompt.shape[:2])
        return (torch.cat([prompt, embeds], dim=1),
                torch.cat([prompt_mask, attention_mask], dim=1), weights)

    def forward(self, input_ids, attention_mask=None, labels=None, task_ids=None,
                decoder_input_ids=None, return_attention: bool = False, **kwargs):
        embeds, mask, weights = self.encoder_inputs(input_ids, attention_mask, task_ids)
        out = self.backbone(inputs_embeds=embeds, attention_mask=mask, labels=labels,
                            decoder_input_ids=decoder_input_ids, **kwargs)
        if return_attention:
            out["prompt_attention"] = weights
        return out

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, task_ids=None, **generate_kwargs):
        embeds, mask, _ = self.encoder_inputs(input_ids, attention_mask, task_ids)
        return self.backbone.generate(inputs_embeds=embeds, attention_mask=mask, **generate_kwargs)

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def parameter_groups(named: dict[str, list[nn.Parameter]], lrs: dict[str, float],
                     weight_decay: float) -> list[dict]:
    """Optimizer groups with a name each (so a test can check which rate a group got)."""
    groups = []
    for name, params in named.items():
        params = [p for p in params if p.requires_grad]
        if params:
            groups.append({"name": name, "params": params, "lr": lrs[name],
                           "weight_decay": weight_decay})
    return groups
