"""One formatted, text-to-text example: what the model reads, what it should write, how to score it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Example:
    """A formatted example.

    task     registry name of the task it belongs to
    source   the input text (task prefix + named fields)
    target   the training target text (first gold answer for QA)
    answers  every gold string accepted when scoring (one for classification)
    group    key of the unit that must stay on one side of a dev/test split (MultiRC question,
             ReCoRD query); None when each example is its own unit
    index    position inside its split (features and predictions are matched back by it)
    label    the hub label (int class, float score for STS-B), None for QA
    """

    task: str
    source: str
    target: str
    answers: list[str] = field(default_factory=list)
    group: str | None = None
    index: int = 0
    label: int | float | None = None
