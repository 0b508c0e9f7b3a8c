"""A real tiny run with stdout redirected to a file (as a SLURM job's .out): the file shows
progress lines, dev scores and the summary; metrics.jsonl grows during the run (it holds the
first steps when the run is killed) and after --resume holds every step once, with the numbers
of result.json; with tensorboard installed, --report-to tensorboard leaves the same scalars."""

import importlib.util
import json
import os
import subprocess
import sys

from attempt_dist.training.tracking import read_metrics
from tests.train_helpers import REPO, TINY, result

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
RUN = [*TINY, "--method", "prompt", "--tasks", "rte,cb", "--max-steps", "4", "--eval-every", "2", "--log-every", "1",
       "--save-every", "2", "--max-train-examples", "4", "--dropout", "0",
       "--report-to", "tensorboard" if HAS_TENSORBOARD else "none"]


def train_to_file(args, log, env=None):
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    full_env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(var, None)
    with open(log, "w") as handle:  # stdout is a file, not a terminal
        return subprocess.run([sys.executable, "-m", "attempt_dist.train", *args], stdout=handle,
                              stderr=subprocess.STDOUT, env=full_env, cwd=REPO, timeout=600).returncode


def test_killed_then_resumed_run_tracks_every_step_once(tmp_path):
    out = tmp_path / "run"
    code = train_to_file([*RUN, "--output-dir", str(out)], tmp_path / "first.out",
                         env={"ATTEMPT_DIST_CRASH_AFTER_STEP": "2"})
    assert code == 9  # killed right after step 2's checkpoint
    assert [(r["kind"], r["step"]) for r in read_metrics(out)] == [("train", 1), ("train", 2), ("eval", 2)]
    first = (tmp_path / "first.out").read_text()
    assert "train step 1/4 (25%)" in first and "train step 2/4 (50%)" in first
    assert "dev at step 2: " in first

    assert train_to_file([*RUN, "--output-dir", str(out), "--resume"], tmp_path / "second.out") == 0
    second = (tmp_path / "second.out").read_text()
    assert "train: 2/4 steps done, 2 to go" in second and "train step 4/4 (100%)" in second
    assert "dev at step 4: " in second and "eval test: " in second
    assert "mean headline" in second and f"done: {out}/result.json" in second

    rows, rec = read_metrics(out), result(out)
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert [round(r["loss"], 6) for r in train] == rec["train_loss"]  # one step per line: the step's loss
    assert [r["examples"] for r in train] == [2, 4, 6, 8]
    assert set(train[0]["lr"]) == set(rec["learning_rates"])
    dev = [r for r in rows if r["kind"] == "eval" and not r["final"]]
    assert [(r["step"], r["score"], r["metrics"]) for r in dev] == \
        [(h["step"], h["score"], h["metrics"]) for h in rec["history"]]
    final = {r["split"]: r for r in rows if r["kind"] == "eval" and r["final"]}
    assert {split: final[split]["metrics"] for split in ("dev", "test")} == rec["metrics"]
    assert final["test"]["score"] == rec["score"]["test"]
    if HAS_TENSORBOARD:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(out / "tensorboard"))
        events.Reload()
        assert [(e.step, round(e.value, 4)) for e in events.Scalars("train/loss")] == \
            [(r["step"], round(r["loss"], 4)) for r in train]
        assert [e.step for e in events.Scalars("dev/score")] == [2, 4]
