"""Our Tables 2-4 beside the paper's: every cell we have, the paper's value where the paper has
that cell (same table, block, row label, backbone and column) and the delta (ours - paper).

    attempt-dist compare RUN            # a rich table per paper table
    attempt-dist compare RUN --json     # the same cells as JSON
    attempt-dist plot RUN               # also writes table2_t5-base_vs_paper.{md,csv}, ...

Each task cell is ours in the metric the paper's cell is consistent with (numbers.csv's metric
column: accuracy, or for 7 MRPC cells the mean of accuracy and F1). A group's average is
compared only when we have the whole group, as the mean of those cells (the paper averages its
printed columns; a multi-task row's MultiRC is its single-task run's, as in the paper); params /
task is compared too (delta in parameters). A cell whose paper value is one of the paper's own
slips (attempt_dist.paper.SLIPS) or fits no metric carries the reason, marked with a dagger.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from statistics import mean

from ..paper import paper_metric, paper_slip, paper_value
from ..paper.consistency import NO_METRIC, why_no_metric
from .names import task_label
from .tables import TABLE2, TABLE3, TableData, format_params

PARAMS = "params_per_task"
# The paper's column groups, each with its "Avg." column (Table 4 has none).
_FULL_GROUPS = {"table2": TABLE2, "table3": TABLE3, "table4": []}


@dataclass(frozen=True)
class Comparison:
    table: str
    model: str
    section: str        # single | multi
    row: str
    column: str         # task, avg_<first task of the group> or params_per_task
    ours: float
    paper: float | None
    delta: float | None
    slip: str | None = None
    """Why the paper's own value does not follow from the paper (paper.SLIPS), if it does not."""

    def to_json(self) -> dict:
        return asdict(self)


def _ours(table: TableData, row, task: str) -> float | None:
    """Our value for a task cell, in the metric the paper's cell is consistent with (numbers.csv's
    metric column: MRPC's acc_f1 cells), else the task's headline metric."""
    metric = paper_metric(table.name, row.label, task, multitask=row.multitask, backbone=table.model)
    if metric and metric != NO_METRIC and metric in row.by_metric.get(task, {}):
        return row.by_metric[task][metric]
    return row.values.get(task)


def _columns(table: TableData, row) -> list[tuple[str, float | None]]:
    out = [(PARAMS, row.params)]
    for group in table.groups:
        values = {task: _ours(table, row, task) for task in group}
        out += list(values.items())
        if group in _FULL_GROUPS[table.name]:  # the paper averages its cells as printed: so do we
            whole = all(v is not None for v in values.values())
            out.append((f"avg_{group[0]}", mean(values.values()) if whole else None))
    return out


def _slip(table: TableData, row, column: str) -> str | None:
    if paper_metric(table.name, row.label, column, multitask=row.multitask, backbone=table.model) == NO_METRIC:
        return why_no_metric(column)
    return paper_slip(table.name, row.label, column, multitask=row.multitask)


def compare_tables(tables: list[TableData]) -> list[Comparison]:
    cells = []
    for table in tables:
        for row in table.rows:
            for column, ours in _columns(table, row):
                if ours is None:
                    continue
                paper = paper_value(table.name, row.label, column, multitask=row.multitask, backbone=table.model)
                delta = None if paper is None else round(ours - paper, 6)
                slip = _slip(table, row, column) if paper is not None else None
                cells.append(Comparison(table.name, table.model, "multi" if row.multitask else "single", row.label,
                                        column, ours, paper, delta, slip))
    return cells


def column_label(column: str) -> str:
    if column == PARAMS:
        return "params / task"
    if column.startswith("avg_"):
        return f"Avg. ({task_label(column[4:])}...)"
    return task_label(column)


def format_value(column: str, value: float | None, *, delta: bool = False) -> str:
    if value is None:
        return "–"
    if column == PARAMS:
        return ("+" if delta and value > 0 else "-" if delta and value < 0 else "") + format_params(abs(value))
    return f"{value:+.2f}" if delta else f"{value:.2f}"


def write_comparisons(tables: list[TableData], out_dir: Path) -> list[Path]:
    """<table>_<model>_vs_paper.md (our table, each cell `ours (paper, delta)`) and .csv (one
    line per cell), for every table that has at least one cell the paper also has."""
    cells = compare_tables(tables)
    paths = []
    for table in tables:
        mine = {(c.section, c.row, c.column): c for c in cells if (c.table, c.model) == (table.name, table.model)}
        if not any(c.paper is not None for c in mine.values()):
            continue
        stem = out_dir / f"{table.name}_{table.model}_vs_paper"
        paths += [_write_markdown(table, mine, stem.with_suffix(".md")), _write_csv(mine, stem.with_suffix(".csv"))]
    return paths


def _cell_text(cell: Comparison | None) -> str:
    if cell is None:
        return "–"
    ours = format_value(cell.column, cell.ours)
    if cell.paper is None:
        return ours
    mark = SLIP_MARK if cell.slip else ""
    return f"{ours} ({format_value(cell.column, cell.paper)}{mark}, {format_value(cell.column, cell.delta, delta=True)})"


SLIP_MARK = "†"


def _write_markdown(table: TableData, mine: dict, path: Path) -> Path:
    columns = [PARAMS] + [c for g in table.groups for c in g + ([f"avg_{g[0]}"] if g in _FULL_GROUPS[table.name] else [])]
    lines = [f"**{table.name.capitalize()} ({table.model}) beside the paper**: each cell is ours "
             f"(the paper's, ours - paper); – where we have no value.", "",
             "| Method | " + " | ".join(column_label(c) for c in columns) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
    for row in table.rows:
        section = "multi" if row.multitask else "single"
        # Table 4 names ATTEMPT-MT's ablation like ATTEMPT-ST's ("no prior transfer")
        label = f"{row.label} (MT)" if table.name == "table4" and row.multitask and row.label != "ATTEMPT-MT" else row.label
        lines.append(f"| {label} | " + " | ".join(_cell_text(mine.get((section, row.label, c))) for c in columns) + " |")
    notes = [f"{SLIP_MARK} {c.row} ({'MT' if c.section == 'multi' else 'ST'}), {column_label(c.column)}: {c.slip}"
             for c in mine.values() if c.slip]
    if notes:
        lines += [""] + [f"{note}  " for note in notes]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_csv(mine: dict, path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["section", "method", "column", "ours", "paper", "delta", "paper_slip"])
        for cell in mine.values():
            writer.writerow([cell.section, cell.row, cell.column, cell.ours,
                             "" if cell.paper is None else cell.paper, "" if cell.delta is None else cell.delta,
                             cell.slip or ""])
    return path
