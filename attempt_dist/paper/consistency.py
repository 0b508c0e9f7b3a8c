"""Which metric a paper cell can be: a check by arithmetic where a table header is ambiguous.

An accuracy on n test examples is k/n for a whole k, so a printed accuracy is 100 k / n rounded
(or, as the paper sometimes prints, cut) to two decimals. The small GLUE and SuperGLUE targets
are scored on half of their hub validation split (section 4.3), so n is known and the check is
sharp: 100/n is 0.06 points or more for every task below. A cell that is not such a multiple is
no accuracy; MRPC's (Table 6: "accuracy & F1") are then the mean of accuracy and F1, which the
authors' code reports for a task with two metrics; a cell of an accuracy-only task that is not
one fits no metric, and `compare` says so.

numbers.csv's metric column is what this check gave, written once; tests/test_paper_numbers.py
recomputes it from the values.
"""

from __future__ import annotations

import math

# Half of each hub validation split (4.3): the test halves' possible sizes (an odd split gives
# either half). WNLI 71, RTE 277, WSC 104, CB 56, MRPC 408, WiC 638, BoolQ 3270 examples.
TEST_SIZES = {"wnli": (35, 36), "rte": (138, 139), "wsc": (52,), "cb": (28,), "mrpc": (204,), "wic": (319,),
              "boolq": (1635,)}
# What a two-metric task's non-accuracy cells are (Table 6's header names both).
SECOND_METRIC = {"mrpc": "acc_f1"}
NO_METRIC = "none"


def is_accuracy(value: float, n: int) -> bool:
    """Whether `value` is 100 k / n, rounded or cut to two decimals, for a whole k."""
    k = round(value * n / 100)
    for kk in (k - 1, k, k + 1):
        if 0 <= kk <= n:
            exact = 100 * kk / n
            if abs(round(exact, 2) - value) < 1e-9 or abs(math.floor(exact * 100 + 1e-9) / 100 - value) < 1e-9:
                return True
    return False


def cell_metric(task: str, value: float, headline: str) -> str:
    """The metric a cell's value is consistent with: `headline` where it cannot be checked or
    fits, the task's second metric where it is not an accuracy, NO_METRIC where it fits none."""
    sizes = TEST_SIZES.get(task)
    if not sizes or headline != "accuracy" or any(is_accuracy(value, n) for n in sizes):
        return headline
    return SECOND_METRIC.get(task, NO_METRIC)


def why_no_metric(task: str) -> str:
    sizes = " or ".join(f"100/{n}" for n in TEST_SIZES[task])
    return f"fits no metric: not an accuracy on {task}'s test half (a multiple of {sizes}), and {task} reports only accuracy"
