"""Houlsby adapters: a bottleneck (down -> non-linearity -> up, residual) after the self-attention and
the feed-forward sublayer of every encoder and decoder block, as in the compacter code the
paper uses (reduction factor 32, so t5-base trains 48 x 37,656 = 1,807,488 parameters).

The adapter sits on the sublayer's output projection, before T5's dropout and residual add:
    h + dropout(adapter(o(x)))   with   adapter(y) = y + up(f(down(y))),  f = GELU by default
"""

from __future__ import annotations

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
    label="Adapter", row="Adapter",
    not_in_peft="these are Houlsby adapters on the output of every attention and feed-forward sublayer (compacter's "
                "placement and activation); PEFT's built-in tuners (LoRA, IA3, ...) change the weights instead and "
                "have no such bottleneck")
# The non-linearities compacter's adapter config offers (its "swish" is SiLU).
ACTIVATIONS = {"gelu": nn.functional.gelu, "relu": nn.functional.relu, "swish": nn.functional.silu}


@dataclass
class Config(MethodConfig):
    lr: float = 3e-4
    reduction_factor: int = option(32, "adapter bottleneck size = d_model // reduction factor")
    activation: str = option("gelu", "the adapter's non-linearity", flag="--adapter-activation",
                             choices=tuple(ACTIVATIONS))

    def validate(self) -> None:
        super().validate()
        positive_int("reduction_factor", self.reduction_factor)
        if self.activation not in ACTIVATIONS:
            raise UserError(f"unknown adapter activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}")


def bottleneck_size(cfg: Config, d_model: int, model: str = "this backbone") -> int:
    """d_model // reduction factor, refused when that is 0: no adapter (and never silently
    another size than the one the run records)."""
    if cfg.reduction_factor > d_model:
        raise UserError(f"--reduction-factor {cfg.reduction_factor} leaves no adapter bottleneck on {model} "
                        f"(d_model {d_model} // {cfg.reduction_factor} = 0); use at most {d_model}")
    return d_model // cfg.reduction_factor


def check_backbone(cfg: Config, model: str, d_model: int) -> None:
    """Refused before anything loads: the options ask for a bottleneck this backbone cannot have."""
    bottleneck_size(cfg, d_model, model)


class Adapter(nn.Module):
    def __init__(self, d_model: int, bottleneck: int, device=None, dtype=None, activation: str = "gelu") -> None:
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.down = nn.Linear(d_model, bottleneck, device=device, dtype=dtype)
        self.up = nn.Linear(bottleneck, d_model, device=device, dtype=dtype)
        if self.up.weight.device.type != "meta":
            # Near-identity start: the frozen model's behaviour is unchanged at step 0.
            nn.init.normal_(self.down.weight, std=1e-2)
            nn.init.zeros_(self.down.bias)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.activation(self.down(hidden)))


class LinearThenAdapter(nn.Module):
    """Replaces a sublayer's output projection: the frozen linear, then the adapter."""

    def __init__(self, linear: nn.Linear, adapter: Adapter) -> None:
        super().__init__()
        self.linear = linear
        self.adapter = adapter

    @property
    def weight(self) -> torch.Tensor:  # T5's feed-forward reads `wo.weight.dtype`
        return self.linear.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.linear(hidden))


def _sublayer_outputs(backbone):
    """(parent module, attribute) of each self-attention and feed-forward output projection."""
    for stack in (backbone.encoder, backbone.decoder):
        for block in stack.block:
            yield block.layer[0].SelfAttention, "o"
            yield block.layer[-1].DenseReluDense, "wo"


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    for param in backbone.parameters():
        param.requires_grad_(False)
    d_model = backbone.config.d_model
    bottleneck = bottleneck_size(cfg, d_model)
    for parent, name in _sublayer_outputs(backbone):
        linear = getattr(parent, name)
        w = linear.weight
        setattr(parent, name, LinearThenAdapter(linear, Adapter(d_model, bottleneck, w.device, w.dtype, cfg.activation)))
    return WrappedT5(backbone, None, method="adapter", num_tasks=inputs.num_tasks)


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    return parameter_groups({"adapters": list(model.parameters())}, {"adapters": cfg.lr},
                            cfg.weight_decay)
