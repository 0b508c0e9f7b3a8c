"""The toy runs the learning tests share (attempt_dist/tasks/toy.py on t5-toy): one set of run
options, the library the prompt-transfer methods read, and what chance scores on a target."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from attempt_dist.tasks.toy import SOURCES, generate_rows
from tests.paths import REPO
from tests.train_helpers import launch

# Short inputs and answers, no dropout, dev capped at its first 50 rows, no checkpoints unless a
# test asks (--save-every); the demo's settings (examples/sweeps/toy.yaml) at a test's size.
TOY = ["--model", "t5-toy", "--ds-config", "zero0", "--batch-size", "16", "--max-length", "32",
       "--max-target-length", "8", "--max-eval-examples", "50", "--warmup-steps", "10",
       "--dropout", "0", "--save-every", "1000", "--prompt-length", "10"]
DEV_ROWS = 50


def chance(task: str, rows: int = DEV_ROWS) -> float:
    """The best exact-match score (percent) of an answer that ignores what the task asks, on the
    dev rows a run scores: always the most common answer, or a uniformly random word of the input."""
    dev = generate_rows(task, "validation", rows)
    if "label" in dev[0]:  # a class: the majority one
        return 100 * Counter(r["label"] for r in dev).most_common(1)[0][1] / len(dev)
    constant = Counter(r["answer"] for r in dev).most_common(1)[0][1] / len(dev)
    random_word = statistics.mean(r["text"].split().count(r["answer"]) / len(r["text"].split()) for r in dev)
    return 100 * max(constant, random_word)


def build_library(folder: Path, steps: int) -> tuple[Path, Path]:
    """The demo's library stage, shortened: a prompt per toy source, then the attention prior
    (a gate pre-trained over the sources). Returns (prompt library, prior.pt)."""
    launch([*TOY, "--sources", ",".join(SOURCES), "--max-steps", str(steps), "--eval-every", str(steps),
            "--stages", "sources,prior", "--output-dir", str(folder)], script=REPO / "launch" / "pipeline.py")
    return folder / "prompts", folder / "prior" / "prior.pt"
