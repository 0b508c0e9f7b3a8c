"""What a method needs besides the backbone: each method module declares it once as `NEEDS`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Needs:
    prompt: bool = False
    """Puts a soft prompt of --prompt-length rows in front of the input."""
    library: bool = False
    """Reads a source-prompt library (--source-prompts): SPoT starts from it, ATTEMPT mixes it."""
    prior: bool = False
    """Can start its attention gate from a pre-trained prior (--prior, the pipeline's prior.pt)."""
    attention: bool = False
    """Returns per-instance attention weights over the source prompts (Figure 5)."""
