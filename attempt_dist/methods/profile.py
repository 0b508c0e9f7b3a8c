"""What the rest of the package asks a method besides building it: each method module declares
it once as `PROFILE`, and planning, export, tables and figures read it there.

    PROFILE = Profile(label="Prompt tuning", row="PT", peft=PromptTuningPeft())
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Display:
    """How one method (or one named variant of it, e.g. SPoT-g) is called in figures and tables."""

    label: str
    """Legends of the figures: "Prompt tuning"."""
    row: str
    """The paper's single-task table row: "PT"."""
    multitask_row: str = ""
    """The paper's multi-task row; default `row` + "-MT"."""

    def table_row(self, multitask: bool) -> str:
        if not multitask:
            return self.row
        return self.multitask_row or f"{self.row}-MT"


@dataclass(frozen=True)
class Profile:
    label: str
    row: str
    multitask_row: str = ""
    variants: dict[str, Display] = field(default_factory=dict)
    """Named variants with rows of their own (SPoT's spot-g, spot-t), in the paper's order."""
    backward_factor: float = 1.0
    """Backward FLOPs per forward FLOP for the planner: 1 when the backbone is frozen (input
    gradients only), 2 when every backbone weight also gets its gradient."""
    peft: object | None = None
    """How a run exports to PEFT: an object with `adapters(cfg, state)` (see prompt.py); None: it has none."""
    not_in_peft: str = ""
    """Why a run has no PEFT form (said when export --format peft refuses it)."""

    def __post_init__(self) -> None:
        # A method either exports to PEFT or says why not: a refusal is never left unexplained.
        if (self.peft is None) == (not self.not_in_peft):
            raise TypeError("a method Profile gives either peft or not_in_peft, not both or neither")

    @property
    def display(self) -> Display:
        return Display(self.label, self.row, self.multitask_row)
