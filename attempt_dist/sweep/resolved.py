"""`attempt-dist sweep FILE --dry-run --json`: every cell with the options its trainer would run
with, resolved, so a program can check a sweep against the paper (epochs, learning rates,
lengths, prior, library, sources) without reading the trainer's defaults.

Each cell's argv goes through the trainer's own parser (as check.py does), so what is printed
is what the job would get: the method's defaults filled in (lr, gate_lr, spot_top_k, ...) and
the library paths it would read. `max_length_by_task` resolves the per-task default a run
without --max-length uses (4.3: 256, MultiRC 348, MRQA 512). A cell that selects its sources by
SPoT-t's probes (SPoT-t, ATTEMPT's single_prompt) gets `selected_sources`: the sources its run
will take, read from the probes' recorded similarities once the library holds them, else a
sentence saying when they are chosen.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..library import sources as source_library
from ..methods import PRIOR_METHODS
from .check import _RaisingParser
from .shared_library import shared_library_dir
from .spec import DEFAULT_TRAINER, Cell, Library, Sweep, cell_prior, spot_input, train_argv
from .state import cell_run_dir, library_dir
from .submit import library_args, library_argv


def trainer_parser():
    """The trainer's own parser, raising UserError instead of exiting."""
    from ..training.config import build_parser

    return build_parser(parser_class=_RaisingParser)


def cell_argv(cell: Cell, run: Path, library: Library | None) -> list[str]:
    """The command line the cell's trainer gets in the sweep folder `run`."""
    return train_argv(cell, cell_run_dir(run, cell.name), library_args(run, cell, library))


def resolved_train(parser, argv: list[str]):
    """The TrainConfig the default trainer builds from `argv`: the method's defaults filled in."""
    from ..training.config import config_from_args

    return config_from_args(parser.parse_args(argv))


def resolved_sweep(sweep: Sweep, run: Path) -> dict:
    from ..tasks import get_task

    parser = trainer_parser()
    cells = []
    for cell in sweep.cells:
        library = sweep.libraries.get(cell.library)
        argv = cell_argv(cell, run, library)
        entry = {**cell.to_json(), "argv": argv}
        if sweep.trainer == DEFAULT_TRAINER:  # a custom trainer's options are its own to resolve
            cfg = resolved_train(parser, argv)
            entry["train"] = {**cfg.to_dict(), "max_length_by_task": {
                t: cfg.max_length or get_task(t).max_length for t in cfg.tasks}}
            if library is not None:  # the source prompts it reads: --sources, else the whole library
                entry["sources"] = list(cfg.sources or library.sources)
            if spot_input(cell) == "probes" and library is not None:
                top_k = entry["train"].get("spot_top_k", 1)  # SPoT-t's option; the single prompt keeps one
                entry["selected_sources"] = selected_sources(_library_run(run, library), cell.tasks, top_k)
        cells.append(entry)
    libraries = {key: {"model": lib.model, "sources": list(lib.sources), "epochs": lib.epochs,
                       "priors": list(lib.priors), "spot_g": lib.spot_g, "probes": list(lib.probes),
                       "folder": lib.folder, "argv": library_argv(lib, library_dir(run, key) / "run")}
                 for key, lib in sweep.libraries.items()}
    return {"name": sweep.name, "run": str(run), "cells": cells, "libraries": libraries}


def _library_run(run: Path, library: Library) -> Path:
    folder = shared_library_dir(run, library.folder, library.key) if library.folder else library_dir(run, library.key)
    return folder / "run"


def selected_sources(library_run: Path, tasks, top_k: int) -> list[str] | str:
    """The top_k sources by the probes' similarity (mean over a multi-task run's tasks), as the
    pipeline recorded it (methods/spot.similarities), or when they will be known."""
    index = library_run / source_library.PROBES_DIR / "library.json"
    pending = f"the top {top_k} by SPoT-t's probe similarity, once the library's probes are built"
    if not index.exists():
        return pending
    probes = json.loads(index.read_text()).get("prompts", {})
    sims = [probes.get(t, {}).get("similarity") for t in tasks]
    if not sims or any(s is None for s in sims):
        return pending
    mean = {name: sum(s[name] for s in sims) / len(sims) for name in sims[0]}
    return sorted(mean, key=mean.get, reverse=True)[:top_k]


def library_inputs(cell: Cell, library: Library | None) -> str:
    """What a cell reads from its library, in words for the dry-run table: its B.1 prior and
    where its prompt or single source comes from (SPoT-g's mixture, SPoT-t's selection)."""
    if library is None:
        return ""
    words = []
    if cell.method in PRIOR_METHODS:
        prior = cell_prior(cell, library.sources)
        words.append(f"prior={prior}" if prior else "prior=none")
    spot = spot_input(cell)
    if spot == "probes":
        k = cell.train.get("spot_top_k", 1)  # SPoT-t's option (default 1); the single prompt keeps one
        words.append(f"source=SPoT-t top-{k} by probe")
    elif spot == "spot_g":
        words.append("source=spot_g mixture")
    elif cell.train.get("ablation") == "single_prompt" and cell.train.get("single_source"):
        words.append(f"source={cell.train['single_source']}")
    return " ".join(words)
