"""What a method may need besides the backbone and its config."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MethodInputs:
    num_tasks: int = 1
    source_names: list[str] | None = None
    """Names of the source prompts, in the order of `source_prompts`."""
    source_prompts: torch.Tensor | None = None
    """[t, m, d] frozen source prompts (ATTEMPT) or candidates to initialise from (SPoT)."""
    target_init: torch.Tensor | None = None
    """[num_tasks, m, d] initial target prompts; None = sample rows of the real vocabulary."""
    probes: torch.Tensor | None = None
    """[num_tasks, m, d] SPoT-t probe prompts of the targets (ATTEMPT's single_prompt picks by them)."""
    prior: dict | None = None
    """A pre-trained attention gate state dict (ATTEMPT's attention prior)."""
    seed: int = 0
