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
from .profile import Profile
from .prompts import TaskPrompts, vocab_init


class PromptTuningPeft:
    """A run's prompt(s) as PEFT prompt-tuning adapters, one per task: PEFT puts the prompt in front
    of the encoder input with an all-ones mask and leaves the decoder alone (PROMPT_TUNING for
    SEQ_2_SEQ_LM with num_transformer_submodules 1), as WrappedT5 does, so the adapter gives the
    run's logits exactly."""

    kind = "prompt-tuning"

    def adapters(self, cfg, state: dict[str, torch.Tensor]) -> list[tuple[str, dict[str, torch.Tensor], dict]]:
        """(task, adapter_model.safetensors tensors, adapter_config.json) for each task, in task-id order."""
        prompts = state["prompt.weight"]  # [tasks, m, d]
        return [(task, {"prompt_embeddings": prompts[task_id].float().contiguous()},
                 peft_adapter_config(cfg, *prompts.shape[1:])) for task_id, task in enumerate(cfg.tasks)]


def peft_adapter_config(cfg, num_virtual_tokens: int, token_dim: int) -> dict:
    """PEFT's PromptTuningConfig as saved by save_pretrained (adapter_config.json)."""
    from ..model.backbones import get_spec

    spec = get_spec(cfg.model)
    return {"peft_type": "PROMPT_TUNING", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": num_virtual_tokens,
            "token_dim": token_dim, "num_transformer_submodules": 1, "num_attention_heads": spec.num_heads,
            "num_layers": spec.num_layers, "base_model_name_or_path": None,  # the run's base model: export fills it in
            "revision": None, "inference_mode": True, "prompt_tuning_init": "RANDOM",
            "prompt_tuning_init_text": None, "tokenizer_name_or_path": None, "tokenizer_kwargs": None,
            "modules_to_save": None}


NEEDS = Needs(prompt=True)
PROFILE = Profile(label="Prompt tuning", row="PT", peft=PromptTuningPeft())


@dataclass
class Config(MethodConfig):
    lr: float = 0.3  # the paper's prompt-tuning rate
    prompt_length: int = option(100, "m, rows of every prompt")
    shared_prompt: bool = option(False, "one prompt for every task of a multi-task run instead of one per task "
                                        "(SPoT-g's prompt on the source mixture; the SPoT MT baselines)",
                           for_libraries=False)

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
