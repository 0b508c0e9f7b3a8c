"""Every cell's options through the trainer's own parser and checks, when the sweep is read.

A misspelled ablation, an unknown DeepSpeed config, `batch_size: four` or `max_steps: -3` are
caught by `attempt-dist sweep FILE --dry-run` on the laptop, with the cell's name, instead of by
the first job on the cluster. The checks are the trainer's (argparse types, TrainConfig
validation, the method's own config, the DeepSpeed config lookup), so the two cannot drift.
Sweeps with a custom `trainer:` are not checked: their parser is theirs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from .spec import DEFAULT_TRAINER, Sweep, train_argv
from .submit import library_args

# Stand-in folders: the real ones exist only once the sweep runs.
PLACEHOLDER_RUN = Path("SWEEP_RUN")


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2
        raise UserError(message)


def check_cell_options(sweep: Sweep) -> None:
    """Raise UserError naming the first cell whose options the trainer would refuse."""
    if sweep.trainer != DEFAULT_TRAINER:
        return
    from ..distributed.config import _read
    from ..training.config import build_parser, config_from_args

    parser = build_parser(parser_class=_RaisingParser)
    checked_configs: set[str] = set()
    where = sweep.source or "sweep"
    for cell in sweep.cells:
        argv = train_argv(cell, PLACEHOLDER_RUN / cell.name, library_args(PLACEHOLDER_RUN, cell, sweep.libraries.get(cell.library)))
        try:
            cfg = config_from_args(parser.parse_args(argv))  # the method's own checks included
            if cfg.ds_config != "auto" and cfg.ds_config not in checked_configs:
                _read(cfg.ds_config)
                checked_configs.add(cfg.ds_config)
        except UserError as err:
            raise UserError(f"{where}: cell {cell.name}: {err}") from None
