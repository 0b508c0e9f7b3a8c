"""`attempt-dist compare RUN_DIR`: our Tables 2-4 cells beside the paper's values and the delta."""

from __future__ import annotations

import json
from pathlib import Path

from .plot import results_folder_command

HELP = "our table cells beside the paper's (Tables 2-4) and the delta"


def register(subparsers) -> None:
    parser = results_folder_command(subparsers, "compare", HELP, run, "builds Tables 2-4 as `attempt-dist plot` "
                                    "does, printing each cell with the paper's value and ours - paper")
    parser.add_argument("--json", action="store_true", help="print the cells as JSON instead of tables")


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..errors import UserError
    from ..plots.compare import SLIP_MARK, column_label, compare_tables, format_value
    from ..plots.records import collect
    from ..plots.tables import build_tables

    run_dir = Path(args.run_dir)
    records = collect(run_dir)
    if not records:
        raise UserError(f"{run_dir} holds no result.json or failure.json records; nothing to compare "
                        f"(run a sweep or training into it first)")
    cells = compare_tables(build_tables(records, args.split))
    if not cells:
        raise UserError(f"{run_dir} holds no completed run of a task in the paper's Tables 2-4; nothing to compare")
    console = Console()
    speed = speed_rows(records, run_dir)
    if args.json:
        console.print_json(json.dumps({"split": args.split, "cells": [c.to_json() for c in cells], "speed": speed}))
        return 0
    for key in dict.fromkeys((c.table, c.model) for c in cells):
        mine = [c for c in cells if (c.table, c.model) == key]
        # the paper's own slips (marked below the table) would only measure the paper's error
        matched = [c for c in mine if c.delta is not None and c.column != "params_per_task" and not c.slip]
        title = f"{key[0].capitalize()} ({key[1]}, {args.split})"
        if matched:
            title += f": {len(matched)} cells beside the paper's, mean |ours - paper| " \
                     f"{sum(abs(c.delta) for c in matched) / len(matched):.2f}"
        table = Table(title=title, title_justify="left")
        for name, justify in (("Method", "left"), ("", "left"), ("Column", "left"), ("Ours", "right"),
                              ("Paper", "right"), ("Ours - paper", "right")):
            table.add_column(name, justify=justify)
        for c in mine:
            table.add_row(c.row, "MT" if c.section == "multi" else "", column_label(c.column),
                          format_value(c.column, c.ours), format_value(c.column, c.paper) + (SLIP_MARK if c.slip else ""),
                          format_value(c.column, c.delta, delta=True))
        console.print(table)
        for c in mine:
            if c.slip:
                console.print(f"{SLIP_MARK} {c.row} {column_label(c.column)}: {c.slip}", highlight=False)
    if speed:
        console.print(speed_table(speed))
    return 0


def speed_rows(records, run_dir: Path) -> list[dict]:
    """Each completed run's steady-state speed (RunResult.speed), where its run measured one."""
    return [{"run": str(r.path.relative_to(run_dir)), "model": r.model, "method": r.variant, "tasks": list(r.tasks),
             "seed": r.seed, **r.speed} for r in records if r.speed is not None]


def speed_table(rows: list[dict]):
    """How well each run used its device: steady-state tokens/s, examples/s and MFU per run."""
    from rich.table import Table

    from ..finished.record import speed_text

    table = Table(title="Training speed (steady state: the first steps left out)", title_justify="left")
    table.add_column("Run", no_wrap=True)  # a folder users copy: never folded
    for name in ("Model", "Method", "Tasks", "tokens/s", "examples/s", "MFU"):
        table.add_column(name, justify="right" if name[0].islower() or name == "MFU" else "left")
    for row in rows:
        text = speed_text(row)
        table.add_row(row["run"], row["model"], row["method"], ",".join(row["tasks"]), text["tokens/s"],
                      text["examples/s"], text["MFU"])
    return table
