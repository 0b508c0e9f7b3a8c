"""Figure 4: (a) per-task trainable parameters vs backbone, (b-d) score vs backbone per task."""

from __future__ import annotations

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
    """Trainable parameters per task, counted from the real modules (attempt_dist.params)."""
    if counter is None:
        from ..params import count_trainable as counter
    models = model_order(r.model for r in records)
    methods = order_methods({r.method for r in records})
    rows = []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method in methods:
        xs, ys = [], []
        for i, model in enumerate(models):
            try:
                count = counter(model, method)
            except UserError:
                continue  # a backbone or method the registry does not know: nothing to count
            rows.append({"model": model, "method": method, "per_task_params": count.per_task,
                         "trainable": count.trainable, "backbone_params": count.total})
            xs.append(i)
            ys.append(count.per_task)
        if xs:
            ax.plot(xs, ys, marker="o", label=method_label(method))
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), models)
    ax.set_xlabel("backbone")
    ax.set_ylabel("trainable parameters per task")
    ax.set_title("(a) parameters per task")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, rows, out_dir, "fig4a_params")


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
        ax.set_ylabel(f"{split} score (%)")
        ax.set_title(f"({letter}) {task}")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        paths += save_figure(fig, rows, out_dir, f"fig4{letter}_{task}")
    return paths
