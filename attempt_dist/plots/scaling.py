"""Figure 4: (a) per-task trainable parameters vs backbone, (b-d) score vs backbone per task."""

from __future__ import annotations

import inspect
import string
from collections import defaultdict
from pathlib import Path
from statistics import mean

from matplotlib.transforms import blended_transform_factory

from ..errors import UserError
from .names import SCALING_TASKS, method_label, order_methods, order_tasks
from .output import plt, save_figure
from .records import Record, model_order


def fig4a(records: list[Record], out_dir: Path, counter=None) -> list[Path]:
    """Trainable parameters per task, counted from the real modules (attempt_dist.model.params) at
    each run's own prompt length m and ATTEMPT bottleneck r (the defaults where a record lacks them)."""
    if counter is None:
        from ..model.params import count_trainable as counter
    models = model_order(r.model for r in records)
    order = order_methods({r.method for r in records})
    series = sorted({(r.method, *_size_options(r)) for r in records},
                    key=lambda s: (order.index(s[0]), s[1] or 0, s[2] or 0))
    several = {m for m in {s[0] for s in series} if sum(1 for s in series if s[0] == m) > 1}
    rows = []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method, m, r in series:
        xs, ys = [], []
        for i, model in enumerate(models):
            if not any(rec.model == model and rec.method == method and _size_options(rec) == (m, r) for rec in records):
                continue
            try:
                count = counter(model, method, **_counter_options(counter, m, r))
            except UserError:
                continue  # a backbone or method the registry does not know: nothing to count
            rows.append({"model": model, "method": method, "prompt_length": m, "bottleneck": r,
                         "per_task_params": count.per_task, "trainable": count.trainable,
                         "backbone_params": count.total})
            xs.append(i)
            ys.append(count.per_task)
        if xs:
            label = method_label(method)
            if method in several:
                label += " (" + ", ".join(f"{k}={v}" for k, v in (("m", m), ("r", r)) if v is not None) + ")"
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), models)
    ax.set_xlabel("backbone")
    ax.set_ylabel("trainable parameters per task")
    ax.set_title("(a) parameters per task")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, rows, out_dir, "fig4a_params")


def _headline_name(task: str) -> str:
    from ..tasks import TASKS

    return TASKS[task].headline if task in TASKS else "score"


def _size_options(record: Record) -> tuple[int | None, int | None]:
    """(m, r) that size the record's trainable parameters: m for prompt methods, r for ATTEMPT."""
    from ..methods import PROMPT_METHODS
    from ..methods.options import cli_options

    m = record.prompt_length if record.method in PROMPT_METHODS else None
    r = record.bottleneck if record.method in cli_options()["bottleneck"].fields else None
    return m, r


def _counter_options(counter, m: int | None, r: int | None) -> dict:
    options = {} if m is None else {"prompt_length": m}
    if r is not None:  # the counter's name for r: `bottleneck`, or `rank` before it was renamed
        params = inspect.signature(counter).parameters
        options["bottleneck" if "bottleneck" in params or "rank" not in params else "rank"] = r
    return options


def fig4_tasks(records: list[Record], out_dir: Path, split: str = "test") -> list[Path]:
    """One figure per single-task target: mean score over seeds per backbone and method;
    an x at the bottom where the cell did not fit in memory (failure.json status oom)."""
    single = [r for r in records if not r.multitask and r.ablation is None and not r.no_prior]
    tasks = order_tasks({r.tasks[0] for r in single}, first=SCALING_TASKS)
    models = model_order(r.model for r in single)
    paths = []
    for letter, task in zip(string.ascii_lowercase[1:], tasks):
        cells: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for r in single:
            if r.tasks[0] == task:
                cells[(r.variant, r.model)].append(r)
        variants = order_methods({v for v, _ in cells})
        rows = []
        fig, ax = plt.subplots(figsize=(5, 3.6))
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        oom_label = "did not fit (OOM)"
        for variant in variants:
            xs, ys = [], []
            for i, model in enumerate(models):
                runs = cells.get((variant, model), [])
                scores = [s for s in (r.score(task, split) for r in runs if r.status == "completed") if s is not None]
                if scores:
                    status, value = "completed", mean(scores)
                    xs.append(i)
                    ys.append(value)
                elif any(r.status == "oom" for r in runs):
                    status, value = "oom", None
                elif runs:
                    status, value = "failed", None
                else:
                    continue
                rows.append({"task": task, "model": model, "method": variant, "value": value,
                             "status": status, "seeds": len(scores)})
            line = ax.plot(xs, ys, marker="o", label=method_label(variant))[0]
            ooms = [i for i, m in enumerate(models)
                    if any(r.status == "oom" for r in cells.get((variant, m), []))
                    and not any(r.status == "completed" for r in cells.get((variant, m), []))]
            if ooms:
                ax.scatter(ooms, [0.03] * len(ooms), marker="x", s=60, color=line.get_color(),
                           transform=bottom, clip_on=False, label=oom_label)
                oom_label = None  # one legend entry for all methods
        ax.set_xticks(range(len(models)), models)
        ax.set_xlim(-0.3, len(models) - 0.7)
        ax.set_xlabel("backbone")
        ax.set_ylabel(f"{split} {_headline_name(task)} (%)")
        ax.set_title(f"({letter}) {task}")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        paths += save_figure(fig, rows, out_dir, f"fig4{letter}_{task}")
    return paths
