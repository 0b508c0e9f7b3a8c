"""BitFit: only bias terms train.

T5 has no biases, so, as in the compacter implementation the paper uses, a zero-initialised
bias is added to every linear layer (attention q/k/v/o, feed-forward wi/wo, and lm_head).
Zeros keep the model's outputs unchanged at the start. The T5 layer-norm scales are the
only other bias-like terms (T5's LayerNorm has a scale and no shift) and also train: with
them t5-base trains 282,496 parameters, the paper's "280k".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import MethodConfig, WrappedT5, parameter_groups
from .inputs import MethodInputs
from .needs import Needs
from .options import option
from .profile import Profile


NEEDS = Needs()
PROFILE = Profile(
    label="BitFit", row="BitFit",
    not_in_peft="T5's linear layers have no biases: BitFit here adds new zero-initialised biases (and trains the "
                "LayerNorm scales); PEFT has no tuner that adds biases")


@dataclass
class Config(MethodConfig):
    lr: float = 3e-4
    train_layer_norms: bool = option(True, "also train the T5 LayerNorm scales (the paper's 280k count "
                                           "for t5-base includes them)")


def _is_layer_norm(module: nn.Module) -> bool:
    return type(module).__name__.endswith("LayerNorm")


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    for param in backbone.parameters():
        param.requires_grad_(False)
    for module in backbone.modules():
        if isinstance(module, nn.Linear):
            if module.bias is None:
                w = module.weight
                module.bias = nn.Parameter(torch.zeros(module.out_features, device=w.device,
                                                       dtype=w.dtype))
            module.bias.requires_grad_(True)
        elif cfg.train_layer_norms and _is_layer_norm(module):
            module.weight.requires_grad_(True)
    return WrappedT5(backbone, None, method="bitfit", num_tasks=inputs.num_tasks)


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    return parameter_groups({"biases": list(model.parameters())}, {"biases": cfg.lr},
                            cfg.weight_decay)
