"""Metrics on generated strings, as percentages (0-100) like the paper's tables.

`score(task, predictions, examples)` picks the task's own metrics (the reference scored every
task with the first task's metric). A prediction that is not one of the task's label words
(or, for STS-B, not a number) counts as wrong and never raises.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter, defaultdict
from typing import Mapping, Sequence

import numpy as np

# scipy and sklearn (about 1 s to import) are imported inside the metrics that use them, so
# that reading the registry (`attempt-dist tasks`, --help) does not pay for them.

from ..errors import UserError
from .example import Example
from .registry import get_task

# STS-B predictions that do not parse: outside the 0-5 scale, so they pull correlation down.
STSB_UNPARSEABLE = -1.0


def _pct(value: float) -> float:
    return 100.0 * float(value)


# --- classification -------------------------------------------------------------------------

def accuracy(predictions: Sequence[str], examples: Sequence[Example]) -> float:
    if not examples:
        return 0.0
    hits = sum(p.strip() == e.target for p, e in zip(predictions, examples))
    return _pct(hits / len(examples))


def _binary(predictions, examples, positive: str, negative: str):
    """Gold and predicted 0/1; a word that is neither label counts as the wrong one."""
    gold = np.array([int(e.target == positive) for e in examples])
    pred = []
    for p, g in zip(predictions, gold):
        p = p.strip()
        pred.append(1 if p == positive else 0 if p == negative else 1 - g)
    return gold, np.array(pred, dtype=int)


def binary_f1(predictions, examples, words: Sequence[str]) -> float:
    """F1 of the positive class words[1] (MRPC 'equivalent', QQP 'duplicate')."""
    from sklearn.metrics import f1_score

    gold, pred = _binary(predictions, examples, words[1], words[0])
    return _pct(f1_score(gold, pred, pos_label=1, zero_division=0.0))


def matthews(predictions, examples, words: Sequence[str]) -> float:
    from sklearn.metrics import matthews_corrcoef

    gold, pred = _binary(predictions, examples, words[1], words[0])
    if len(set(gold)) < 2 and len(set(pred)) < 2:
        return 0.0  # undefined (a constant vs a constant); sklearn also returns 0
    return _pct(matthews_corrcoef(gold, pred))


def macro_f1(predictions, examples, words: Sequence[str]) -> float:
    """Mean F1 over the task's classes; an unknown word is an extra class that is always wrong."""
    from sklearn.metrics import f1_score

    index = {w: i for i, w in enumerate(words)}
    gold = [index[e.target] for e in examples]
    pred = [index.get(p.strip(), -1) for p in predictions]
    return _pct(f1_score(gold, pred, labels=list(range(len(words))), average="macro",
                         zero_division=0.0))


# --- regression (STS-B) -----------------------------------------------------------------------

def parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except (ValueError, AttributeError):
        return STSB_UNPARSEABLE
    return value if math.isfinite(value) else STSB_UNPARSEABLE


def _correlation(fn, predictions, examples) -> float:
    pred = np.array([parse_float(p) for p in predictions])
    gold = np.array([float(e.label if e.label is not None else parse_float(e.target)) for e in examples])
    if len(pred) < 2 or np.all(pred == pred[0]) or np.all(gold == gold[0]):
        return 0.0  # correlation undefined for a constant: report no correlation, not NaN
    return _pct(fn(gold, pred)[0])


def pearson(predictions, examples) -> float:
    from scipy import stats

    return _correlation(stats.pearsonr, predictions, examples)


def spearman(predictions, examples) -> float:
    from scipy import stats

    return _correlation(stats.spearmanr, predictions, examples)


# --- MultiRC ----------------------------------------------------------------------------------

def multirc_f1a(predictions, examples) -> float:
    """F1 over all answer options (positive = 'True')."""
    return binary_f1(predictions, examples, ("False", "True"))


def grouped_em(predictions, examples) -> float:
    """Share of groups (MultiRC questions) whose every answer option is right."""
    ok: dict[str, bool] = defaultdict(lambda: True)
    for p, e in zip(predictions, examples):
        key = e.group if e.group is not None else f"#{e.index}"
        ok[key] = ok[key] and p.strip() == e.target
    return _pct(sum(ok.values()) / len(ok)) if ok else 0.0


# --- extractive QA (SQuAD, ReCoRD, MRQA) ------------------------------------------------------

def normalize_answer(text: str) -> str:
    """SQuAD v1.1 evaluation normalisation: lower case, no punctuation, no articles."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _qa(fn, predictions, examples) -> float:
    if not examples:
        return 0.0
    total = sum(max(fn(p, g) for g in (e.answers or [e.target])) for p, e in zip(predictions, examples))
    return _pct(total / len(examples))


def qa_em(predictions, examples) -> float:
    return _qa(exact_match, predictions, examples)


def qa_f1(predictions, examples) -> float:
    return _qa(token_f1, predictions, examples)


# --- dispatch ---------------------------------------------------------------------------------

def _metric(name: str, task, predictions, examples) -> float:
    if name == "accuracy":
        return accuracy(predictions, examples)
    if name == "f1":
        if task.kind == "qa":
            return qa_f1(predictions, examples)
        return binary_f1(predictions, examples, task.label_words)
    if name == "em":
        if task.kind == "qa":
            return qa_em(predictions, examples)
        return grouped_em(predictions, examples)
    if name == "acc_f1":  # the mean of accuracy and F1 (MRPC: the cells of the paper that are not accuracy)
        return (accuracy(predictions, examples) + binary_f1(predictions, examples, task.label_words)) / 2
    if name == "f1a":
        return multirc_f1a(predictions, examples)
    if name == "f1_macro":
        return macro_f1(predictions, examples, task.label_words)
    if name == "matthews":
        return matthews(predictions, examples, task.label_words)
    if name == "pearson":
        return pearson(predictions, examples)
    if name == "spearman":
        return spearman(predictions, examples)
    raise KeyError(f"unknown metric {name!r}")


def score(task_name: str, predictions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    """The task's metrics (percentages) for predictions aligned with examples."""
    task = get_task(task_name)
    if len(predictions) != len(examples):
        raise ValueError(f"{task_name}: {len(predictions)} predictions for {len(examples)} examples")
    wrong = {e.task for e in examples} - {task_name}
    if wrong:
        raise ValueError(f"scoring {task_name} with examples of {sorted(wrong)}")
    predictions = [p if isinstance(p, str) else "" for p in predictions]
    return {name: _metric(name, task, predictions, examples) for name in task.metrics}


def headline_score(task_name: str, metrics: dict[str, float]) -> float:
    """The task's headline metric (the paper's table cell, registry.HEADLINE_METRIC): what
    best-on-dev selection compares and what tables and figures show."""
    name = get_task(task_name).headline
    if name not in metrics:
        raise ValueError(f"{task_name}: headline metric {name!r} missing from {sorted(metrics)}")
    return float(metrics[name])


def headline_or_mean(task_name: str, metrics: Mapping[str, float]) -> float:
    """headline_score, or, for a task this registry lacks or a record with other metric names
    (written by another version), the mean of its metrics: a status line or table still shows a number."""
    try:
        return headline_score(task_name, dict(metrics))
    except (UserError, ValueError):
        return sum(metrics.values()) / len(metrics)


def primary_score(task_name: str, metrics: dict[str, float]) -> float:
    """Mean of the task's own metrics (a summary; selection and tables use headline_score)."""
    names = get_task(task_name).metrics
    missing = [n for n in names if n not in metrics]
    if missing:
        raise ValueError(f"{task_name}: metrics {missing} missing from {sorted(metrics)}")
    return float(sum(metrics[n] for n in names) / len(names))
