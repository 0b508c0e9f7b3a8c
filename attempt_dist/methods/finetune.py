"""Fine-tuning: every backbone parameter trains (the paper's FT baseline)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import MethodConfig, WrappedT5, parameter_groups
from .inputs import MethodInputs
from .needs import Needs
from .profile import Profile


NEEDS = Needs()
PROFILE = Profile(
    label="Fine-tuning", row="FT",
    backward_factor=2.0,  # every backbone weight gets its gradient, besides the input gradients
    not_in_peft="a fine-tuned run is a whole new backbone, not an adapter; export --format safetensors, or load "
                "trainable.safetensors into T5ForConditionalGeneration (names without the 'backbone.' prefix)")


@dataclass
class Config(MethodConfig):
    lr: float = 3e-4  # B.5's "x 10^-4" lost its digit; the authors' released config: 3e-4 (see --lr's help)


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    for param in backbone.parameters():
        param.requires_grad_(True)
    return WrappedT5(backbone, None, method="finetune", num_tasks=inputs.num_tasks)


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    return parameter_groups({"backbone": list(model.parameters())}, {"backbone": cfg.lr},
                            cfg.weight_decay)
