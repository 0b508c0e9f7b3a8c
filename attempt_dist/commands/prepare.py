"""`attempt-dist prepare`: fetch a sweep's or run's weights, tokenizers and data splits into a
cache, for compute nodes without internet (attempt_dist/prepare.py).

    attempt-dist prepare launch/sweeps/scaling.yaml --cache /shared/hf
    attempt-dist prepare --models t5-base --tasks boolq,cb --cache /shared/hf
"""

from __future__ import annotations

from ..cli_args import split_csv
from ..errors import UserError

HELP = "fetch a sweep's or run's weights and data into a cache, for compute nodes without internet"


def register(subparsers) -> None:
    parser = subparsers.add_parser("prepare", help=HELP, description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", nargs="?", default=None, help="a sweep file: everything its cells and libraries read")
    parser.add_argument("--models", default="", help="comma-separated backbones (with --tasks, instead of a sweep)")
    parser.add_argument("--tasks", default="", help="comma-separated tasks: every hub split each one reads")
    parser.add_argument("--cache", required=True,
                        help="the cache folder, on a file system the compute nodes share (may be $HF_HOME); "
                             "jobs then run with ATTEMPT_DIST_PREPARED set to it")
    parser.add_argument("--mirror", default=None,
                        help="fetch from this folder laid out like the hub instead of the hub (a site's copy)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..prepare import PREPARED_ENV, needs_for, needs_of_sweep, prepare

    if args.sweep:
        from ..sweep import load_sweep

        needs = needs_of_sweep(load_sweep(args.sweep))
    elif args.models or args.tasks:
        needs = needs_for(split_csv(args.models), split_csv(args.tasks))
    else:
        raise UserError("name what to fetch: a sweep file, or --models and/or --tasks")
    manifest = prepare(needs, args.cache, mirror=args.mirror, log=lambda line: print(line, flush=True))
    print(f"{len(manifest['models'])} model(s), {len(manifest['data'])} data split(s) in {args.cache}; "
          f"run the jobs with {PREPARED_ENV}={args.cache}", flush=True)
    return 0
