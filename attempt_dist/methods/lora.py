"""LoRA (Hu et al. 2021) on the attention query and value projections.

Every T5 attention's q and v (encoder self-attention, decoder self- and cross-attention) gets
a trainable low-rank update beside its frozen weight:
    q(x) = W_q x + (alpha / r) B A x,   A [r, d_in] (Kaiming-uniform), B [d_out, r] = 0
so the frozen model's outputs are unchanged at step 0. One update serves every task of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .base import MethodConfig, WrappedT5, parameter_groups, positive_int
from .inputs import MethodInputs
from .needs import Needs
from .options import option
from .profile import Profile


NEEDS = Needs()
PROFILE = Profile(
    label="LoRA", row="LoRA",
    not_in_peft="PEFT has LoRA, but this method's export to it (LoraConfig with target_modules q, v) is not "
                "written; export --format safetensors")


@dataclass
class Config(MethodConfig):
    lr: float = 5e-4
    lora_rank: int = option(8, "r, the rank of each q/v update")
    lora_alpha: float = option(16.0, "the update is scaled by alpha / r")

    def validate(self) -> None:
        super().validate()
        positive_int("lora_rank", self.lora_rank)
        if not (isinstance(self.lora_alpha, (int, float)) and math.isfinite(self.lora_alpha) and self.lora_alpha > 0):
            raise UserError(f"lora_alpha must be a positive finite number, got {self.lora_alpha!r}")


class LoRALinear(nn.Module):
    """A frozen linear plus its trainable low-rank update (names as PEFT's: lora_A, lora_B)."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        w = linear.weight
        self.linear = linear
        self.lora_A = nn.Linear(linear.in_features, rank, bias=False, device=w.device, dtype=w.dtype)
        self.lora_B = nn.Linear(rank, linear.out_features, bias=False, device=w.device, dtype=w.dtype)
        self.scaling = alpha / rank
        if w.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden) + self.lora_B(self.lora_A(hidden)) * self.scaling


def _attentions(backbone):
    for stack in (backbone.encoder, backbone.decoder):
        for block in stack.block:
            for layer in block.layer:
                for name in ("SelfAttention", "EncDecAttention"):
                    if hasattr(layer, name):
                        yield getattr(layer, name)


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    for param in backbone.parameters():
        param.requires_grad_(False)
    for attention in _attentions(backbone):
        for name in ("q", "v"):
            setattr(attention, name, LoRALinear(getattr(attention, name), cfg.lora_rank, cfg.lora_alpha))
    return WrappedT5(backbone, None, method="lora", num_tasks=inputs.num_tasks)


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    return parameter_groups({"lora": list(model.parameters())}, {"lora": cfg.lr}, cfg.weight_decay)
