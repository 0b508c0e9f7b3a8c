"""Figure 4: (a) per-task trainable parameters vs backbone, (b-d) score vs backbone per task."""

from __future__ import annotations

import json
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
    each run's own method options (its prompt length m, ATTEMPT's bottleneck r, an adapter's
    reduction factor, ...; the method's defaults where a record lacks them). Runs whose options
    count the same on every backbone share a line; a method with several lines names the
    options that tell them apart."""
    if counter is None:
        from ..model.params import count_trainable as counter
    models = model_order(r.model for r in records)
    order = order_methods({r.method for r in records})
    lines = sorted(_lines(records, models, counter),
                   key=lambda line: (order.index(line[0]), sum(c.per_task for c in line[2] if c)))
    rows = []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method, apart, counts, present in lines:
        xs = [i for i, model in enumerate(models) if model in present and counts[i] is not None]
        for i in xs:
            rows.append({"model": models[i], "method": method, "options": apart, "per_task_params": counts[i].per_task,
                         "trainable": counts[i].trainable, "backbone_params": counts[i].total})
        if xs:
            label = method_label(method) + (f" ({apart})" if apart else "")
            ax.plot(xs, [counts[i].per_task for i in xs], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), models)
    ax.set_xlabel("backbone")
    ax.set_ylabel("trainable parameters per task")
    ax.set_title("(a) parameters per task")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, rows, out_dir, "fig4a_params")


def _lines(records: list[Record], models: list[str], counter) -> list[tuple]:
    """(method, the options that set its line apart as "k=v, ...", counts over `models` (None
    where the registry cannot count), the backbones it has runs on): one line per method and
    distinct counts, so options that do not size the method (its learning rate) split nothing."""
    from ..methods.options import cli_options

    table = cli_options()
    runs: dict[tuple, set[str]] = defaultdict(set)  # (method, its options as JSON, defaults filled in) -> backbones
    for r in records:
        defaults = {dest: opt.defaults[r.method] for dest, opt in table.items() if r.method in opt.fields}
        runs[(r.method, json.dumps({**defaults, **r.options}, sort_keys=True))].add(r.model)
    grouped: dict[tuple, dict] = {}  # (method, per-task counts) -> its option sets, backbones, counts
    for (method, options), present in runs.items():
        options = json.loads(options)
        counts = tuple(_count(counter, model, method, options) for model in models)
        line = grouped.setdefault((method, tuple(c and c.per_task for c in counts)),
                                  {"options": [], "present": set(), "counts": counts})
        line["options"].append(options)
        line["present"] |= present
    by_method = defaultdict(list)
    for (method, _), line in grouped.items():
        by_method[method].append(line["options"])
    return [(method, _options_apart(by_method[method], line["options"]) if len(by_method[method]) > 1 else "",
             line["counts"], line["present"]) for (method, _), line in grouped.items()]


def _count(counter, model: str, method: str, options: dict):
    try:
        return counter(model, method, **options)
    except UserError:
        return None  # a backbone or method the registry does not know: nothing to count


def _options_apart(lines: list[list[dict]], mine: list[dict]) -> str:
    """The options with one value in each of a method's lines and not the same in all of them,
    as this line has them."""
    names = sorted({name for line in lines for options in line for name in options})
    apart = [name for name in names
             if all(len({repr(o.get(name)) for o in line}) == 1 for line in lines)
             and len({repr(line[0].get(name)) for line in lines}) > 1]
    return ", ".join(f"{name}={mine[0].get(name)}" for name in apart)


def _headline_name(task: str) -> str:
    from ..tasks import TASKS

    return TASKS[task].headline if task in TASKS else "score"


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
