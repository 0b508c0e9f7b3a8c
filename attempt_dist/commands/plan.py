"""`attempt-dist plan`: will a run fit under a GPU memory cap, and how? Predicted before any job runs.

    attempt-dist plan --model t5-3b --method attempt --batch-size 32 --gpu-mem-cap 24GiB
    attempt-dist plan --model t5-11b --method attempt --batch-size 8 --json

Exit codes: 0 a configuration fits (the recommended one is what `train --ds-config auto`
uses), 3 nothing fits (the smallest cap that would is printed), 2 bad input.
"""

from __future__ import annotations

import json
import sys

from ..cli_args import split_csv
from ..errors import UserError

HELP = "predict per-GPU memory of each DeepSpeed layout and pick the fastest that fits"

EXIT_DOES_NOT_FIT = 3
# The table groups the components (all of them are in --json).
COLUMNS = [("weights", ("frozen_weights", "trainable_weights", "gathered_layers")),
           ("grads+optim", ("gradients", "optimizer_state")),
           ("saved act", ("saved_activations",)),
           ("transient", ("transient_buffers",)),
           ("eval extra", ("evaluation",))]


def register(subparsers) -> None:
    from ..methods import METHODS
    from ..methods.options import add_method_args  # imports the methods, and so torch (see cli.py)

    parser = subparsers.add_parser("plan", help=HELP,
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="backbone, e.g. t5-3b")
    parser.add_argument("--method", required=True, help=", ".join(METHODS))
    parser.add_argument("--batch-size", type=int, default=32, help="examples per rank per optimizer step (default 32)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks: their number (multi-task prompts) and longest max length")
    parser.add_argument("--max-length", type=int, default=None, help="input tokens before the prompt (default: the tasks' own, else 256)")
    parser.add_argument("--max-target-length", type=int, default=128, help="target tokens (default 128)")
    parser.add_argument("--world-size", type=int, default=1, help="data-parallel ranks (default 1)")
    parser.add_argument("--gpu-mem-cap", default="24GiB", help="per-GPU memory, e.g. 24GiB (default), 80GB")
    parser.add_argument("--host-mem", default=None,
                        help="host memory per node for offload, e.g. 512GiB (default: this machine's; "
                             "give the compute nodes' when planning from a login node)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                        help="cuda: bf16 and the GPU's attention kernel (default); cpu: fp32, this project's CPU path")
    parser.add_argument("--all", action="store_true", help="list every micro-batch, not only each layout's largest that fits")
    parser.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    add_method_args(parser.add_argument_group("method options", "as for `attempt-dist train`"))
    parser.set_defaults(func=run)


def request_from_args(args):
    from ..distributed.memory import parse_size
    from ..methods.options import given_options
    from ..planning import PlanRequest
    from ..planning.auto import host_memory_bytes
    from ..tasks import get_task

    tasks = split_csv(args.tasks)
    max_length = args.max_length or (max(get_task(t).max_length for t in tasks) if tasks else 256)
    return PlanRequest(model=args.model, method=args.method, batch_size=args.batch_size, max_length=max_length,
                       max_target_length=args.max_target_length, options=given_options(args),
                       num_tasks=max(1, len(tasks)), world_size=args.world_size,
                       gpu_mem_cap=parse_size(args.gpu_mem_cap),
                       host_mem=parse_size(args.host_mem) if args.host_mem else host_memory_bytes(),
                       device=args.device)


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f}"


def print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    req = report.request
    title = (f"{req.model} {req.method}, batch {req.batch_size} per rank, {req.world_size} rank(s), "
             f"input {req.max_length}+{req.source_length - req.max_length} prompt, target {req.max_target_length}, "
             f"cap {req.gpu_mem_cap / 2**30:.1f} GiB ({'bf16' if req.device == 'cuda' else 'fp32'})")
    table = Table(title=title, caption=f"GiB per GPU; fits: no names the memory that ran out (GPU or host); peak includes {req.context / 2**30:.2f} GiB of CUDA context and what evaluation "
                                       "needs beyond training (eval extra); "
                                       "host = node memory for offload; cost = step time relative to the fastest that fits")
    for name in ["layout", "ckpt", "micro x acc", *[label for label, _ in COLUMNS], "peak", "host", "fits", "cost"]:
        table.add_column(name, justify="left" if name in ("layout", "fits") else "right", no_wrap=True)
    for c in report.candidates:
        mark = "[bold green]yes *[/]" if c is report.recommended else ("yes" if c.fits else f"[red]no: {c.short_of}[/]")
        table.add_row(c.layout.replace("offload", "off"), "on" if c.activation_checkpointing else "off",
                      f"{c.micro_batch} x {c.grad_accum}",
                      *[_gib(sum(c.components[k] for k in keys)) for _, keys in COLUMNS],
                      _gib(c.peak_bytes), _gib(c.host_bytes), mark, f"{c.relative_cost:.2f}")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    best = report.recommended
    if best:
        console.print(f"recommended (*): {best.layout}, activation checkpointing "
                      f"{'on' if best.activation_checkpointing else 'off'}, micro-batch {best.micro_batch} x "
                      f"accumulation {best.grad_accum}, predicted peak {_gib(best.peak_bytes)} GiB "
                      f"(`train --ds-config auto` uses it)", highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"[bold red]{note}[/]", highlight=False, soft_wrap=True)


def run(args) -> int:
    from ..planning import plan_memory

    if args.world_size < 1:
        raise UserError(f"--world-size must be at least 1, got {args.world_size}")
    report = plan_memory(request_from_args(args), all_micro_batches=args.all)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_table(report)
    return 0 if report.recommended else EXIT_DOES_NOT_FIT
