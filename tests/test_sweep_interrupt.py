"""Ctrl-C during a sweep (submitit's LocalExecutor, the real trainer on t5-tiny): the sweep ends
with one line and exit code 130, the cell keeps its checkpoints and says it was interrupted,
and the relaunch continues that cell from its checkpoint (its step counter goes on, not from 0).
The same on real SLURM (requeue, time limit, scancel) is in test_sweep_slurm.py."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from attempt_dist.atomic_files import read_json
from attempt_dist.sweep import collect_states, load_sweep, run_sweep
from attempt_dist.training.faults import PAUSE_ENV
from tests.paths import REPO
from tests.train_helpers import TINY_SWEEP_TRAIN

PAUSE, STEPS = 4, 6
CELL = "t5-tiny__prompt__boolq__s1"


@pytest.mark.slow
def test_ctrl_c_then_relaunch_resumes_the_cell_from_its_checkpoint(tmp_path, monkeypatch):
    source = tmp_path / "sweep.yaml"
    source.write_text(yaml.safe_dump({
        "name": "interrupt",
        "train": {**TINY_SWEEP_TRAIN, "max_steps": STEPS},
        "grid": {"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq"], "seeds": [1]},
        "executor": {"kind": "local", "time": 10},
    }))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
           PAUSE_ENV: str(PAUSE)}
    # Its own process group, which gets the SIGINT, as a terminal's Ctrl-C reaches every process in it.
    sweep = subprocess.Popen([sys.executable, "-m", "attempt_dist.cli", "sweep", str(source), "--output-dir", str(run)],
                             env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    marker = run / "cells" / CELL / "run" / "paused-rank0"
    deadline = time.time() + 240
    while not marker.exists():
        assert sweep.poll() is None and time.time() < deadline, sweep.communicate()
        time.sleep(0.3)
    os.killpg(sweep.pid, signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    assert f"interrupted: 0/1 cells done; run the same command again to resume" in " ".join(out.split())
    (state,) = collect_states(run)
    assert state.status == "failed" and "interrupted" in state.detail

    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    monkeypatch.delenv(PAUSE_ENV, raising=False)
    assert run_sweep(load_sweep(source), run) == 0
    (state,) = collect_states(run)
    assert state.status == "done"
    cell = run / "cells" / CELL / "run"
    log = (cell / "logs" / "rank0.log").read_text()
    assert f"resumed from step{PAUSE} at step {PAUSE}" in log
    record = read_json(cell / "result.json")
    assert record["steps"] == STEPS and len(record["train_loss"]) == STEPS
    assert list(cell.glob("failure.*.json"))  # the interruption's record, set aside
