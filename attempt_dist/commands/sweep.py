"""`attempt-dist sweep SWEEP.yaml [--output-dir RUN] [--dry-run]` and `attempt-dist sweep status RUN`.

The first positional is either a sweep file or the word `status`; `status` takes the run folder
as a second positional.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

HELP = "run a grid of training jobs with submitit, or show a sweep's status"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help=HELP,
        description="Launch a sweep file (models x methods x tasks x seeds) on SLURM, locally or in "
                    "process; `sweep status RUN_DIR` shows each cell as done/running/failed/oom/pending.",
    )
    parser.add_argument("target", metavar="SWEEP.yaml|status", help="a sweep file, or `status`")
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="with `status`: the sweep's output folder")
    parser.add_argument("--output-dir", help="the sweep's folder (default runs/<sweep name>)")
    parser.add_argument("--dry-run", action="store_true", help="print the grid and the jobs it would submit")
    parser.add_argument("--json", action="store_true",
                        help="as JSON: with `status` every cell's state and retry history; with --dry-run "
                             "every cell with its resolved train options")
    parser.add_argument("--executor", choices=["slurm", "local", "debug"], help="override the file's executor kind")
    parser.add_argument("--data-dir", help="override train.data_dir for every cell")
    cluster = parser.add_argument_group("cluster settings (override the file's executor block)")
    cluster.add_argument("--executor-file", metavar="FILE.yaml",
                         help="your cluster's executor keys (partition, account, qos, time, setup, ...)")
    for key, what in (("partition", "SLURM partition"), ("account", "SLURM account"), ("qos", "SLURM QOS"),
                      ("time", "time limit per job: minutes or HH:MM:SS")):
        cluster.add_argument(f"--{key}", help=what)
    cluster.add_argument("--node-mem", metavar="SIZE",
                         help="memory of one node of the partition (e.g. 256G): --ds-config auto cells whose plan "
                              "needs more are refused before queueing (default: what sinfo says)")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=None,
                        help="wait for SLURM jobs to end (local and debug always wait)")
    parser.add_argument("--retry-oom", action="store_true", help="resubmit cells that ran out of memory")
    parser.add_argument("--rerun-changed", action="store_true",
                        help="a relaunch whose cells train otherwise than those in the folder is refused; with this, "
                             "the changed cells run again in fresh folders (the old ones kept in RUN/replaced/)")
    parser.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                        help="local/debug executors: seconds for the whole run; cells not started by then are not "
                             "started and running ones are cancelled (both run again on the next launch)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import sweep as sweep_lib

    if args.target == "status":
        if not args.run_dir:
            raise UserError("sweep status needs the sweep's folder: attempt-dist sweep status RUN_DIR")
        if args.json:
            import json

            from ..sweep.report import status_json

            data = status_json(Path(args.run_dir))
            print(json.dumps(data, indent=2))
            counts = data["counts"]
        else:
            counts = sweep_lib.print_status(Path(args.run_dir))
        return 1 if counts["failed"] else 0
    if args.run_dir:
        raise UserError(f"unexpected argument {args.run_dir!r}; use --output-dir to choose the sweep's folder")
    if not args.target.endswith((".yaml", ".yml")) and not Path(args.target).is_file():
        raise UserError(f"{args.target!r} is neither a sweep file (.yaml) nor `status`")
    if args.json and not args.dry_run:
        raise UserError("--json prints the dry run; add --dry-run")
    from ..sweep.read import read_executor_file  # the methods and so torch: not for `sweep status`

    settings = read_executor_file(args.executor_file) if args.executor_file else {}
    settings.update({k: getattr(args, k) for k in ("partition", "account", "qos", "time", "node_mem")
                     if getattr(args, k)})
    sweep = sweep_lib.load_sweep(args.target, executor_kind=args.executor, data_dir=args.data_dir,
                                 executor_settings=settings)
    run_dir = Path(args.output_dir) if args.output_dir else sweep_lib.default_run_dir(sweep)
    if args.json:
        import json

        from ..sweep.resolved import resolved_sweep

        print(json.dumps(resolved_sweep(sweep, run_dir.resolve()), indent=1))
        return 0
    return sweep_lib.run_sweep(sweep, run_dir, dry_run=args.dry_run, wait=args.wait, retry_oom=args.retry_oom,
                               deadline_s=args.deadline, rerun_changed=args.rerun_changed)
