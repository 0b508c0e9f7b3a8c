"""sweep --dry-run names a data folder that is missing, or that lacks some split's file (those
splits would come from the hub at run time, or fail offline), before any job reads it."""

import shutil

from attempt_dist.sweep import parse_sweep, run_sweep
from attempt_dist.sweep.data_check import data_lines
from tests.paths import DATA
from tests.train_helpers import TINY_SWEEP_TRAIN


def _sweep(data_dir, tasks=("rte", "cb")):
    return parse_sweep({"name": "d", "train": {**TINY_SWEEP_TRAIN, "data_dir": str(data_dir), "max_steps": 1},
                        "grid": {"models": ["t5-tiny"], "methods": ["prompt"], "tasks": list(tasks), "seeds": [1]},
                        "executor": {"kind": "local"}})


def test_a_folder_with_every_split_says_nothing():
    assert data_lines(_sweep(DATA)) == []


def test_a_missing_folder_and_missing_files_are_each_one_line(tmp_path):
    (line,) = data_lines(_sweep(tmp_path / "nowhere"))
    assert line.startswith(f"data: {tmp_path / 'nowhere'} does not exist here; every split of its 2 task(s)")
    shutil.copytree(DATA / "rte", tmp_path / "data" / "rte")  # cb's files left out
    (line,) = data_lines(_sweep(tmp_path / "data"))
    assert line.startswith(f"data: {tmp_path / 'data'} has no file for 2 of 4 split(s) (cb train, cb validation): "
                           "those come from the hub")


def test_the_dry_run_prints_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert run_sweep(_sweep(tmp_path / "nowhere"), tmp_path / "run", dry_run=True) == 0
    assert f"data: {tmp_path / 'nowhere'} does not exist here" in capsys.readouterr().out
