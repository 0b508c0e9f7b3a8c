"""Prompt tuning (Lester et al. 2021): m trainable vectors prepended to the encoder input.

Each task has its own prompt (several tasks in one run = one prompt per task, selected by
task id), unless `shared_prompt`: one prompt for all the run's tasks. Prompts start as copies
of rows of the backbone's real input embedding sampled among the first 5,000 token ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError
from .base import MethodConfig, WrappedT5, parameter_groups, positive_int
from .inputs import MethodInputs
from .needs import Needs
from .options import option
from .prompts import TaskPrompts, vocab_init


NEEDS = Needs(prompt=True)


@dataclass
class Config(MethodConfig):
    lr: float = 0.3  # the paper's prompt-tuning rate
    prompt_length: int = option(100, "m, rows of every prompt")
    shared_prompt: bool = option(False, "one prompt for every task of a multi-task run instead of one per task "
                                        "(SPoT-g's prompt on the source mixture; the SPoT MT baselines)")

    def validate(self) -> None:
        super().validate()
        positive_int("prompt_length", self.prompt_length)


def initial_prompts(backbone, cfg, inputs: MethodInputs) -> torch.Tensor:
    d_model = backbone.config.d_model
    if inputs.target_init is not None:
        init = inputs.target_init
        expected = (inputs.num_tasks, cfg.prompt_length, d_model)
        if init.dim() == 2:
            init = init.unsqueeze(0).expand(inputs.num_tasks, -1, -1)
        if tuple(init.shape) != expected:
            raise UserError(f"initial prompt has shape {tuple(init.shape)}, expected {expected} "
                            "(tasks x prompt length x d_model)")
        return init.clone()
    generator = torch.Generator().manual_seed(inputs.seed)
    return vocab_init(backbone.get_input_embeddings(), inputs.num_tasks, cfg.prompt_length,
                      generator=generator)


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    for param in backbone.parameters():
        param.requires_grad_(False)
    prompts = TaskPrompts(initial_prompts(backbone, cfg, inputs), shared=cfg.shared_prompt)
    return WrappedT5(backbone, prompts, method="prompt", num_tasks=inputs.num_tasks)


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    return parameter_groups({"prompts": list(model.prompt.parameters())}, {"prompts": cfg.lr},
                            cfg.weight_decay)
