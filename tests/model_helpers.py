"""Tiny random T5s and method wrappers shared by the method tests."""

from __future__ import annotations

import torch

from attempt_dist.model.backbones import build_backbone
from attempt_dist.methods import MethodInputs, apply_method, make_config, needs

PROMPT_LENGTH = 5
RANK = 4
NUM_SOURCES = 3


def tiny_backbone(seed: int = 0):
    model = build_backbone("t5-tiny", "random", seed=seed)
    model.eval()  # no dropout: forward passes are deterministic
    return model


def source_prompts(d_model: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(NUM_SOURCES, PROMPT_LENGTH, d_model, generator=torch.Generator().manual_seed(seed))


def wrap(method: str, num_tasks: int = 1, seed: int = 0, backbone=None, **options):
    """`backbone`: a t5-tiny to wrap instead of a fresh eval-mode one from `seed`."""
    backbone = tiny_backbone(seed) if backbone is None else backbone
    if needs(method).prompt:
        options.setdefault("prompt_length", PROMPT_LENGTH)
    if method == "attempt":
        options.setdefault("bottleneck", RANK)
    cfg = make_config(method, **options)
    inputs = MethodInputs(num_tasks=num_tasks, seed=seed)
    if needs(method).library:
        inputs.source_prompts = source_prompts(backbone.config.d_model)
        inputs.source_names = [f"src{i}" for i in range(NUM_SOURCES)]
    return apply_method(method, backbone, cfg, inputs), cfg


def batch(batch_size: int = 3, length: int = 7, target_length: int = 4, seed: int = 0, num_tasks: int = 1):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 1024, (batch_size, length), generator=g)
    attention_mask = torch.ones_like(input_ids)
    # Ragged lengths: pad the tail of every other example.
    for row in range(1, batch_size, 2):
        input_ids[row, length - 2:] = 0
        attention_mask[row, length - 2:] = 0
    labels = torch.randint(3, 1024, (batch_size, target_length), generator=g)
    labels[:, -1] = 1
    task_ids = torch.arange(batch_size) % num_tasks
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
            "task_ids": task_ids}
