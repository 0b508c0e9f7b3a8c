"""Tables 2-4 of the paper, in its layout, from result records: markdown, LaTeX and CSV.

Table 2: GLUE and SuperGLUE (or the toy targets, captioned as such); Table 3: MRQA 2019 and the Others; Table 4: ATTEMPT ablations.
Rows are methods (single-task block, then multi-task block; SPoT split into SPoT-g and SPoT-t by
the run's spot_mode), cells the mean over seeds of each task's headline metric (the one the
paper reports, attempt_dist.tasks HEADLINE_METRIC, in percent), "params / task" the records'
trainable_per_task. A row's average is given only when it has every column. Beside each table,
<name>_<model>_vs_paper.{md,csv} puts the paper's value and our delta next to every cell it can
match (attempt_dist.plots.compare).
One set of files per backbone in the results: table2_t5-base.md, .tex, .csv.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from ..tasks.toy import TARGETS as TOY_TARGETS
from .names import method_displays, table_row, task_label
from .records import Record, model_order

# Table 2's second column group holds the toy targets (attempt_dist/tasks/toy.py): the CPU
# demo's table has the paper's layout, its own tasks; the paper has no values for them.
TABLE2 = [["wnli", "stsb", "mrpc", "rte", "multirc", "boolq", "wic", "wsc", "cb"], list(TOY_TARGETS)]
TABLE3 = [["nq", "hotpotqa", "searchqa", "newsqa"], ["winogrande", "yelp", "scitail", "paws"]]
TABLE4 = [["boolq", "newsqa", "winogrande"]]
# Table 2's caption names the benchmarks of the columns it holds (each task's Task.benchmark):
# the paper's "Results on GLUE and SuperGLUE.", the CPU demo's on the toy tasks alone.
BENCHMARK_CAPTIONS = {"Toy": "the synthetic toy tasks (attempt_dist/tasks/toy.py)"}


@dataclass
class Row:
    section: str          # "Single-task training" | "Multi-task training" | ""
    label: str
    params: float | None
    values: dict          # task -> float
    multitask: bool = False
    by_metric: dict = field(default_factory=dict)
    """task -> {metric: mean over seeds}: every metric the runs recorded (compare picks the one
    each paper cell is consistent with)."""


@dataclass
class TableData:
    name: str
    model: str
    groups: list[list[str]]   # column groups, each followed by an Avg column
    rows: list[Row]
    caption: str


def row_variant(record: Record) -> str:
    """The record's row in Tables 2-3: its variant, or the one its method picks from the run's
    own options (table_variant: SPoT split into SPoT-g and SPoT-t by its spot_mode)."""
    from ..methods import method_hook

    pick = method_hook(record.method, "table_variant")
    return pick(record) if pick else record.variant


def row_label(variant: str, multitask: bool) -> str:
    """The paper's row names: ATTEMPT-ST / ATTEMPT-MT, FT-MT, Adapter-MT, SPoT-g MT, SPoT-t MT."""
    return table_row(variant, multitask)


def _scores(records: list[Record], task: str, split: str) -> float | None:
    values = [s for s in (r.score(task, split) for r in records if r.status == "completed" and task in r.tasks)
              if s is not None]
    return mean(values) if values else None


def _metric_means(records: list[Record], tasks, split: str) -> dict:
    out: dict = {}
    for task in tasks:
        found: dict = defaultdict(list)
        for r in records:
            if r.status == "completed" and task in r.tasks:
                by_split = r.metrics.get(split) or r.metrics.get("dev") or {}
                for name, value in (by_split.get(task) or {}).items():
                    found[name].append(value)
        if found:
            out[task] = {name: mean(values) for name, values in found.items()}
    return out


def _params(records: list[Record]) -> float | None:
    values = [r.trainable_per_task for r in records if r.trainable_per_task]
    return mean(values) if values else None


def benchmarks_caption(groups: list[list[str]]) -> str:
    """"Results on GLUE and SuperGLUE.": the benchmarks of the tasks in the columns, in order."""
    from ..tasks import get_task

    names = list(dict.fromkeys(get_task(t).benchmark for g in groups for t in g))
    *first, last = [BENCHMARK_CAPTIONS.get(n, n) for n in names]
    return f"Results on {', '.join(first) + ' and ' if first else ''}{last}."


def method_table(name: str, records: list[Record], model: str, groups: list[list[str]], split: str,
                 caption: str | None) -> TableData | None:
    """caption None: benchmarks_caption of the columns present."""
    present = {t for r in records for t in r.tasks}
    groups = [[t for t in g if t in present] for g in groups]
    groups = [g for g in groups if g]
    if not groups:
        return None
    caption = caption or benchmarks_caption(groups)
    wanted = {t for g in groups for t in g}
    plain = [r for r in records if r.model == model and r.ablation is None and not r.no_prior
             and set(r.tasks) & wanted]
    by_row: dict[tuple[bool, str], list[Record]] = defaultdict(list)
    for r in plain:
        by_row[(r.multitask, row_variant(r))].append(r)
    rank = {m: i for i, m in enumerate(method_displays())}
    rows = []
    for multitask, variant in sorted(by_row, key=lambda k: (k[0], rank.get(k[1], len(rank)), k[1])):
        runs = by_row[(multitask, variant)]
        values = {t: _scores(runs, t, split) for t in wanted}
        if multitask:
            values = _with_single_task_runs(values, {t: _scores(by_row.get((False, variant), []), t, split)
                                                     for t in SINGLE_TASK_IN_MT})
        rows.append(Row("Multi-task training" if multitask else "Single-task training",
                        row_label(variant, multitask), _params(runs), values, multitask,
                        _metric_means(runs if multitask else runs, wanted, split)))
    return TableData(name, model, groups, rows, caption) if rows else None


# B.6: "keeping Super-GLUE MultiRC training separated": the paper's multi-task rows print each
# method's single-task MultiRC value (FT-MT 72.77 = FT, ATTEMPT-MT 74.39 = ATTEMPT-ST, ...) and
# average over it, so ours do too.
SINGLE_TASK_IN_MT = ("multirc",)


def _with_single_task_runs(values: dict, single: dict) -> dict:
    out = dict(values)
    for task, value in single.items():
        if task in out and out[task] is None and value is not None:
            out[task] = value
    return out


def ablation_table(records: list[Record], model: str, split: str) -> TableData | None:
    """Table 4 from the runs of the method that declares ablation rows (ATTEMPT's ABLATION_ROWS:
    (row, multi-task, ablation, no prior transfer) each)."""
    from ..methods import METHODS, method_hook

    for method in METHODS:
        ablation_rows = method_hook(method, "ABLATION_ROWS")
        if ablation_rows:
            return _ablation_table(records, model, split, method, ablation_rows)
    return None


def _ablation_table(records: list[Record], model: str, split: str, method: str,
                    ablation_rows: list[tuple]) -> TableData | None:
    runs_of_method = [r for r in records if r.model == model and r.method == method]
    if not any(r.ablation or r.no_prior for r in runs_of_method):
        return None  # no ablation runs: Table 4 would repeat Tables 2-3
    present = {t for r in runs_of_method for t in r.tasks}
    groups = [[t for t in TABLE4[0] if t in present]]
    if not groups[0]:
        return None
    rows = []
    for label, multitask, ablation, no_prior in ablation_rows:
        runs = [r for r in runs_of_method
                if r.multitask == multitask and r.ablation == ablation and r.no_prior == no_prior]
        if runs:
            rows.append(Row("", label, _params(runs), {t: _scores(runs, t, split) for t in groups[0]}, multitask))
    return TableData("table4", model, groups, rows, "Results of ablation studies.")


def is_ablation_folder(records: list[Record]) -> bool:
    """Only runs of the method with ablation rows (ATTEMPT), some of them ablations: the Table 4
    sweep's folder. Its ATTEMPT-ST NewsQA trains on 10k examples (Table 4's note), so it is no
    Table 3 cell."""
    from ..methods import method_hook

    return (all(method_hook(r.method, "ABLATION_ROWS") for r in records)
            and any(r.ablation or r.no_prior for r in records))


def build_tables(records: list[Record], split: str = "test") -> list[TableData]:
    out = []
    table4_only = is_ablation_folder(records)
    for model in model_order(r.model for r in records):
        for table in (
            None if table4_only else method_table("table2", records, model, TABLE2, split, None),
            None if table4_only else method_table(
                "table3", records, model, TABLE3, split,
                "Results on MRQA 2019 QA datasets, WinoGrande (WG), Yelp, SciTail and PAWS."),
            ablation_table(records, model, split),
        ):
            if table is not None:
                out.append(table)
    return out


# --- rendering -------------------------------------------------------------------------------

def group_average(row: Row, group: list[str]) -> float | None:
    values = [row.values.get(t) for t in group]
    return mean(values) if values and all(v is not None for v in values) else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def format_params(n: float | None) -> str:
    if n is None:
        return "–"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            text = f"{n / div:.1f}".rstrip("0").rstrip(".") if n / div < 10 else f"{n / div:.0f}"
            return text + suffix
    return f"{n:.0f}"


def header(table: TableData) -> list[str]:
    cols = ["Method", "params / task"]
    for group in table.groups:
        cols += [task_label(t) for t in group] + ["Avg."]
    return cols


def cells(table: TableData, row: Row) -> list[str]:
    out = [row.label, format_params(row.params)]
    for group in table.groups:
        out += [_fmt(row.values.get(t)) for t in group] + [_fmt(group_average(row, group))]
    return out


def to_markdown(table: TableData) -> str:
    cols = header(table)
    lines = [f"**{table.name.capitalize()} ({table.model})**: {table.caption}", "",
             "| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    section = None
    for row in table.rows:
        if row.section and row.section != section:
            section = row.section
            lines.append(f"| *{section}* |" + " |" * (len(cols) - 1))
        lines.append("| " + " | ".join(cells(table, row)) + " |")
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("–", "--")):
        text = text.replace(a, b)
    return text


def to_latex(table: TableData) -> str:
    cols = header(table)
    lines = [r"\begin{table*}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule",
             " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule"]
    section = None
    for row in table.rows:
        if row.section and row.section != section:
            if section is not None:
                lines.append(r"\midrule")
            section = row.section
            lines.append(rf"\multicolumn{{{len(cols)}}}{{c}}{{\textit{{{section}}}}} \\")
        lines.append(" & ".join(_tex(c) for c in cells(table, row)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{_tex(table.caption)} Backbone: {_tex(table.model)}.}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def write_tables(tables: list[TableData], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in tables:
        stem = out_dir / f"{table.name}_{table.model}"
        md, tex, csv_path = stem.with_suffix(".md"), stem.with_suffix(".tex"), stem.with_suffix(".csv")
        md.write_text(to_markdown(table))
        tex.write_text(to_latex(table))
        with open(csv_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["section", "method", "params_per_task"]
                            + [c for g in table.groups for c in g + [f"avg_{'_'.join(g[:1])}"]])
            for row in table.rows:
                values = []
                for g in table.groups:
                    values += [row.values.get(t) for t in g] + [group_average(row, g)]
                writer.writerow([row.section, row.label, row.params] + ["" if v is None else v for v in values])
        paths += [md, tex, csv_path]
    return paths
