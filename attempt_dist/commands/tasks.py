"""`attempt-dist tasks [--json] [--role source|target] [--group G]`: the task registry as a table.

Run: attempt-dist tasks --json
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from ..tasks import TASKS

HELP = "list the tasks: groups, metrics, lengths, data sources"
WIDE_COLUMNS = 150


def task_rows(role: str | None = None, group: str | None = None) -> list[dict]:
    rows = []
    for t in TASKS.values():
        if (role and t.role != role) or (group and t.group != group):
            continue
        rows.append({
            "name": t.name, "benchmark": t.benchmark, "group": t.group, "role": t.role,
            "kind": t.kind, "metrics": list(t.metrics), "max_length": t.max_length,
            "hub_id": t.hub_id, "hub_config": t.hub_config, "mrqa_subset": t.mrqa_subset,
            "splits": {"scheme": t.split_scheme, **t.hub_splits}, "train_cap": t.train_cap,
            "labels": list(t.label_words),
            "local_files": (None if t.generator else
                            f"<data_dir>/{t.name}/<split>.{{jsonl,json,parquet,csv,jsonl.gz}}"),
            "generated": t.generator is not None,
        })
    return rows


def run(args) -> int:
    rows = task_rows(args.role, args.group)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    # Every column whole (no word cut mid-way): below WIDE_COLUMNS the long ones are left out.
    wide = console.width >= WIDE_COLUMNS
    table = Table(title=f"{len(rows)} tasks", caption=None if wide else
                  f"splits and sources: --json, or a terminal of {WIDE_COLUMNS}+ columns")
    columns = ["name", "group", "role", "kind", "metrics", "max len"] + (["splits", "loads from"] if wide else [])
    for column in columns:
        table.add_column(column, no_wrap=column not in ("metrics", "splits", "loads from"))
    for r in rows:
        splits = r["splits"]["scheme"] + (f", train<={r['train_cap']:,}" if r["train_cap"] else "")
        where = f"{r['hub_id']} ({r['hub_config']})" + (f" subset={r['mrqa_subset']}" if r["mrqa_subset"] else "")
        if r["generated"]:
            where = "generated in code (attempt_dist/tasks/toy.py)"
        cells = [r["name"], r["group"], r["role"], r["kind"], ", ".join(r["metrics"]), str(r["max_length"])]
        table.add_row(*cells, *([splits, where] if wide else []))
    console.print(table)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("tasks", help=HELP)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--role", choices=("source", "target"), help="only source or target tasks")
    parser.add_argument("--group", help="only this multi-task group (e.g. glue, superglue, mrqa)")
    parser.set_defaults(func=run)
