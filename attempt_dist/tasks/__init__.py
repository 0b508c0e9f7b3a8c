"""Task registry: the paper's 25 datasets, their formatting, splits and metrics.

    from attempt_dist.tasks import get_task, score, primary_score
    get_task("rte").metrics        # ('accuracy',)
    get_task("cb").headline        # 'accuracy': the one number the paper's tables report
"""

from .example import Example
from .metrics import headline_or_mean, headline_score, primary_score, score
from .registry import PAPER_TASKS, SOURCE_TASKS, TARGET_TASKS, TASKS, Task, get_task

__all__ = [
    "Example", "Task", "TASKS", "PAPER_TASKS", "SOURCE_TASKS", "TARGET_TASKS", "get_task",
    "score", "headline_score", "headline_or_mean", "primary_score",
]
