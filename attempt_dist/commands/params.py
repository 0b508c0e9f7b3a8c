"""`attempt-dist params`: per-task trainable parameters for each backbone x method.

    attempt-dist params                                  # rich table, paper backbones
    attempt-dist params --models t5-base --methods attempt --num-tasks 1,4 --json
"""

from __future__ import annotations

import csv
import json
import sys

from ..cli_args import split_csv
from ..errors import UserError

HELP = "per-task trainable parameter counts (counted on the meta device)"


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in split_csv(text)]
    except ValueError:
        raise UserError(f"--num-tasks takes comma-separated integers, got {text!r}") from None


def register(subparsers) -> None:
    # Imported here, not at the top: the registry and the methods import torch (see cli.py).
    from ..model.backbones import PAPER_BACKBONES
    from ..methods import METHODS
    from ..methods.options import add_method_args

    parser = subparsers.add_parser("params", help=HELP, description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(PAPER_BACKBONES),
                        help="comma-separated backbones (default: the paper's five)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated methods (default: {','.join(METHODS)})")
    add_method_args(parser.add_argument_group("method options", "as for `attempt-dist train`"))
    parser.add_argument("--num-tasks", default="1",
                        help="N target tasks sharing the trained modules, e.g. 1,4 (default 1)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON records")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    parser.set_defaults(func=run)


def collect(models, methods, options: dict, num_tasks) -> list[dict]:
    from ..methods import method_hook
    from ..model.params import count_trainable

    rows = []
    for model in models:
        for method in methods:
            for n in num_tasks:
                # A multi-task count is the paper's MT row's (SPoT MT: one prompt for the group).
                given = {**(method_hook(method, "MULTITASK_OPTIONS") or {}), **options} if n > 1 else options
                count = count_trainable(model, method, num_tasks=n, **given)
                rows.append({"model": model, "method": method, "num_tasks": n,
                             "trainable": count.trainable, "per_task": count.per_task,
                             "backbone_total": count.total,
                             "percent_of_backbone": 100.0 * count.per_task / count.total})
    return rows


def run(args) -> int:
    from ..methods.options import given_options

    num_tasks = _ints(args.num_tasks)
    rows = collect(split_csv(args.models), split_csv(args.methods), given_options(args), num_tasks)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_table(rows)
    return 0


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Trainable parameters per task", title_justify="left")
    for name in ("backbone", "method", "N tasks", "per task", "all tasks", "% of backbone"):
        table.add_column(name, justify="left" if name in ("backbone", "method") else "right")
    for row in rows:
        table.add_row(row["model"], row["method"], str(row["num_tasks"]),
                      f"{row['per_task']:,.0f}", f"{row['trainable']:,}",
                      f"{row['percent_of_backbone']:.4f}")
    Console().print(table)
