"""Task registry: the paper's 25 datasets, their formatting, splits and metrics.

    from attempt_dist.tasks import get_task, score, primary_score
    get_task("rte").metrics        # ('accuracy',)
"""

from .example import Example
from .metrics import primary_score, score
from .registry import SOURCE_TASKS, TARGET_TASKS, TASKS, Task, get_task

__all__ = [
    "Example", "Task", "TASKS", "SOURCE_TASKS", "TARGET_TASKS", "get_task",
    "score", "primary_score",
]
