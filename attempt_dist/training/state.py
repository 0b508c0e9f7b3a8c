"""What the training recipe carries from step to step and through checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields


@dataclass
class RunState:
    """Saved in every checkpoint (as a dict, the client state's "recipe")."""

    best_score: float = -math.inf
    best: dict | None = None
    """{"step", "epoch", "dev_score"} of the best dev evaluation so far."""
    history: list[dict] = field(default_factory=list)
    """One entry per dev evaluation: step, epoch, score, metrics."""
    examples: int = 0
    """Training examples seen, over all ranks."""
    train_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    """Rank 0's last micro-batch loss at each optimizer step."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> "RunState":
        known = {f.name for f in fields(cls)}  # checkpoints of older versions carry more keys
        return cls(**{k: v for k, v in saved.items() if k in known})

    @property
    def examples_per_s(self) -> float:
        return self.examples / max(self.train_seconds, 1e-9)
