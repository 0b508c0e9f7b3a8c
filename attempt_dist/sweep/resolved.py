"""`attempt-dist sweep FILE --dry-run --json`: every cell with the options its trainer would run
with, resolved, so a program can check a sweep against the paper (epochs, learning rates,
lengths, prior, library, sources) without reading the trainer's defaults.

Each cell's argv goes through the trainer's own parser (as check.py does), so what is printed
is what the job would get: the method's defaults filled in (lr, gate_lr, spot_top_k, ...) and
the library paths it would read. `max_length_by_task` resolves the per-task default a run
without --max-length uses (4.3: 256, MultiRC 348, MRQA 512).
"""

from __future__ import annotations

from pathlib import Path

from .spec import DEFAULT_TRAINER, Sweep, train_argv
from .state import cell_run_dir, library_dir


def resolved_sweep(sweep: Sweep, run: Path) -> dict:
    from ..tasks import get_task
    from ..train_config import build_parser, config_from_args
    from .check import _RaisingParser
    from .launch import library_args, library_argv

    parser = build_parser(parser_class=_RaisingParser)
    cells = []
    for cell in sweep.cells:
        library = sweep.libraries.get(cell.library)
        argv = train_argv(cell, cell_run_dir(run, cell.name), library_args(run, cell, library))
        entry = {**cell.to_json(), "argv": argv}
        if sweep.trainer == DEFAULT_TRAINER:  # a custom trainer's options are its own to resolve
            cfg = config_from_args(parser.parse_args(argv))
            entry["train"] = {**cfg.to_dict(), "max_length_by_task": {
                t: cfg.max_length or get_task(t).max_length for t in cfg.tasks}}
        cells.append(entry)
    libraries = {key: {"model": lib.model, "sources": list(lib.sources), "epochs": lib.epochs,
                       "priors": list(lib.priors), "spot_g": lib.spot_g, "probes": list(lib.probes),
                       "folder": lib.folder, "argv": library_argv(lib, library_dir(run, key) / "run")}
                 for key, lib in sweep.libraries.items()}
    return {"name": sweep.name, "run": str(run), "cells": cells, "libraries": libraries}
