"""Figure 5: mean attention of ATTEMPT's gate over source prompts and the target prompt,
one row per target task, from the attention files a run writes:
    attention/prompts.json  {"prompts": ["mnli", ..., "target"]}
    attention/{split}.jsonl {"task", "index", "weights": [t+1 floats summing to 1]} per line
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..finished.record import RecordError, read_object
from .names import order_tasks, task_label
from .output import plt, save_figure
from .records import Record


def attention_runs(records: list[Record]) -> list[Record]:
    """ATTEMPT-ST runs without ablations when there are any (the paper's figure), else every
    run that saved attention."""
    have = [r for r in records if (r.path / "attention" / "prompts.json").exists()]
    plain = [r for r in have if not r.multitask and r.ablation is None and not r.no_prior]
    return plain or have


def mean_attention(runs: list[Record], split: str = "test") -> tuple[list[str], list[str], np.ndarray, dict]:
    """(tasks, prompt columns, mean weight per task and prompt, instances per task). A prompt's
    mean is over the instances whose run had it: runs with different libraries mix without a
    prompt a run never had counting as weight 0; a task none of whose runs had the prompt is NaN."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    had: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # instances that had the prompt
    counts: dict[str, int] = defaultdict(int)
    prompts_seen: list[str] = []
    for run in runs:
        folder = run.path / "attention"
        names = read_object(folder / "prompts.json").get("prompts")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RecordError(f"{folder / 'prompts.json'}: 'prompts' should be a list of prompt names")
        prompts_seen += [n for n in names if n not in prompts_seen]
        lines = folder / f"{split}.jsonl"
        if not lines.exists():
            lines = folder / ("dev.jsonl" if split == "test" else "test.jsonl")
        if not lines.exists():
            continue
        with open(lines) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                item = _attention_line(lines, number, line)
                weights = item["weights"]
                if len(weights) != len(names):
                    raise RecordError(f"{lines}: line {number} has {len(weights)} weights for {len(names)} prompts")
                for name, w in zip(names, weights):
                    sums[item["task"]][name] += float(w)
                    had[item["task"]][name] += 1
                counts[item["task"]] += 1
    columns = [n for n in prompts_seen if n != "target"] + (["target"] if "target" in prompts_seen else [])
    tasks = order_tasks(counts)
    matrix = (np.array([[sums[t][c] / had[t][c] if had[t][c] else np.nan for c in columns] for t in tasks])
              if tasks else np.zeros((0, 0)))
    return tasks, columns, matrix, dict(counts)


def _attention_line(path: Path, number: int, line: str) -> dict:
    """One {"task", "index", "weights"} line; RecordError naming the file and line otherwise."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        item = None
    if not (isinstance(item, dict) and isinstance(item.get("task"), str) and isinstance(item.get("weights"), list)
            and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in item["weights"])):
        raise RecordError(f"{path}: line {number} is not an attention line (task, index, weights); "
                          f"the file is truncated or corrupt: re-run that run or remove its attention/ folder")
    return item


def fig5(records: list[Record], out_dir: Path, split: str = "test", stem: str = "fig5_attention") -> list[Path]:
    tasks, columns, matrix, counts = mean_attention(attention_runs(records), split)
    if not tasks:
        return []
    missing = np.isnan(matrix)
    rows = [{"task": t, "prompt": c, "mean_weight": None if missing[i, j] else float(matrix[i, j]),
             "instances": counts[t]}
            for i, t in enumerate(tasks) for j, c in enumerate(columns)]
    fig, ax = plt.subplots(figsize=(0.7 * len(columns) + 2, 0.45 * len(tasks) + 1.5))
    cmap = plt.get_cmap("Blues").with_extremes(bad="white")  # a prompt the runs never had: blank, not 0.00
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0, aspect="auto")
    top = np.nanmax(matrix) if not missing.all() else 1.0
    ax.set_xticks(range(len(columns)), [task_label(c) for c in columns], rotation=45, ha="right")
    ax.set_yticks(range(len(tasks)), [task_label(t) for t in tasks])
    for i in range(len(tasks)):
        for j in range(len(columns)):
            if not missing[i, j]:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.6 * top else "black")
    ax.set_xlabel("source prompts and target prompt")
    ax.set_ylabel("target task")
    title = "ATTEMPT attention (mean weight per task)"
    if missing.any():
        title += "\nblank: a prompt not in the library of that task's runs"
    ax.set_title(title, fontsize=9 if missing.any() else None)
    fig.colorbar(image, ax=ax, fraction=0.04)
    return save_figure(fig, rows, out_dir, stem)
