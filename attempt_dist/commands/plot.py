"""`attempt-dist plot RUN_DIR`: Figures 4-5 and Tables 2-4 from the result records in RUN_DIR."""

from __future__ import annotations

from pathlib import Path

HELP = "draw Figures 4-5 and Tables 2-4 from a results folder"


def register(subparsers) -> None:
    parser = results_folder_command(subparsers, "plot", HELP, run, "writes PNG+PDF+CSV figures and "
                                    "markdown/LaTeX/CSV tables into RUN_DIR/figures")
    parser.add_argument("--out", help="output folder (default RUN_DIR/figures)")
    parser.add_argument("--only", choices=["fig4", "fig5", "tables"], action="append",
                        help="draw only these (repeatable)")


def results_folder_command(subparsers, name: str, help: str, run, does: str):
    """The parser of a command that reads a results folder (plot, compare): RUN_DIR and --split
    alike in each; `does` completes its description."""
    parser = subparsers.add_parser(name, help=help,
                                   description=f"Reads every result.json / failure.json under RUN_DIR and {does}.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--split", choices=["test", "dev"], default="test", help="which split's scores")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    from rich.console import Console

    from ..plots import plot_run

    figures = tuple(args.only) if args.only else ("fig4", "fig5", "tables")
    paths = plot_run(Path(args.run_dir), args.out, split=args.split, figures=figures)
    console = Console()
    for path in paths:
        console.print(str(path), highlight=False)
    return 0
