"""Stand-ins for attempt_dist.train.main and attempt_dist.library.pipeline.main that sweep tests inject
through the sweep file's `trainer:` / `pipeline:` keys. They follow the real contracts: write
OUTPUT_DIR/result.json (or failure.json with status oom) and return an exit code. No tests here.

Every call appends one line to $FAKE_SWEEP_LOG so tests can count what actually ran; the
`fake_env` fixture sets it (and FAKES is the sweep-file keys that name these stand-ins).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pytest

from attempt_dist.atomic_files import write_json_atomic
from tests.paths import REPO

FAKES = {"trainer": "test_sweep_fakes:train", "pipeline": "test_sweep_fakes:pipeline"}


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_SWEEP_LOG", str(log))
    # LocalExecutor jobs are new processes: they import the package and the fakes from here.
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    return log


def _parse(argv):
    parser = argparse.ArgumentParser()
    for flag in ("--model", "--method", "--tasks", "--seed", "--output-dir", "--data-dir", "--batch-size",
                 "--source-prompts", "--prior", "--max-steps", "--sources", "--targets", "--stages",
                 "--ablation", "--max-length", "--lr", "--source-epochs", "--priors", "--spot-probe",
                 "--spot-mode", "--grad-accum", "--ds-config"):
        parser.add_argument(flag)
    parser.add_argument("--resume", nargs="?", const="yes")  # as the trainer: --resume [no|yes|auto]
    for flag in ("--overwrite", "--no-prior", "--activation-checkpointing"):
        parser.add_argument(flag, action="store_true")
    return parser.parse_args(argv)


def expected_score(model: str, method: str, task: str, seed: int) -> float:
    """What the fake trainer reports, so tests can check the numbers that come back."""
    return 50.0 + len(model) + 2 * len(method) + len(task) / 10 + seed / 1000


def _log(kind, args):
    with open(os.environ["FAKE_SWEEP_LOG"], "a") as handle:
        handle.write(json.dumps({"kind": kind, "model": args.model, "method": args.method, "tasks": args.tasks,
                                 "rank": os.environ.get("RANK"), "world": os.environ.get("WORLD_SIZE"),
                                 "resume": args.resume, "source_prompts": args.source_prompts,
                                 "prior": args.prior, "stages": args.stages, "batch_size": args.batch_size,
                                 "grad_accum": args.grad_accum,
                                 "checkpointing": args.activation_checkpointing}) + "\n")


def train(argv):
    args = _parse(argv)
    _log("train", args)
    out = Path(args.output_dir)
    if args.method == "broken":
        raise RuntimeError("deliberately broken cell")
    if args.method == "interrupted":  # Ctrl-C arriving while this cell trains
        raise KeyboardInterrupt
    if args.method == "sleepy":  # a cell still running when the sweep's --deadline passes
        time.sleep(120)
    if args.method == "refused":  # a trainer that says why on stderr and exits 2, as on a UserError
        print("loading data...\nerror: the refused method takes no options here", file=sys.stderr, flush=True)
        return 2
    if args.method == "stalls-once" and not args.resume:  # a rank stopped answering after a checkpoint
        _checkpoint(out)
        print("error: rank 0 lost another rank (waited past --dist-timeout)", file=sys.stderr, flush=True)
        return 5
    if args.method in ("preempted-once", "node-lost-once") and not args.resume:
        _checkpoint(out)  # then SLURM ends the job, no record written (the test says how it ended)
        return 0
    if args.method == "diverges":  # what the trainer writes and returns on a non-finite loss
        write_json_atomic(out / "failure.json", {"schema": 2, "status": "failed", "config": {},
                                                 "reason": "loss diverged (nan) at step 3; lower --lr"})
        return 4
    if args.method == "big-batch" and int(args.batch_size or 32) > 4:  # fits from micro-batch 4 down
        _checkpoint(out)  # out of memory at an evaluation, after its first checkpoint
        write_json_atomic(out / "failure.json", {"schema": 2, "status": "oom", "config": {},
                                                 "reason": f"batch {args.batch_size} out of memory under the cap"})
        return 3
    if args.model == "t5-huge":
        write_json_atomic(out / "failure.json", {"schema": 1, "status": "oom",
                                                 "reason": "does not fit under the cap", "config": {}})
        return 1
    if os.environ.get("RANK", "0") != "0":
        return 0
    seed = int(args.seed)
    tasks = args.tasks.split(",")
    metrics = {t: {"accuracy": expected_score(args.model, args.method, t, seed)} for t in tasks}
    write_json_atomic(out / "result.json", {
        "schema": 1, "status": "completed",
        "config": {"model": args.model, "method": args.method, "tasks": tasks, "seed": seed},
        "metrics": {"dev": metrics, "test": metrics},
        "params": {"trainable": 10, "trainable_per_task": 10 / len(tasks), "total": 100},
    })
    return 0


def _checkpoint(out: Path) -> None:
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints" / "latest").write_text("step2")


def pipeline(argv):
    args = _parse(argv)
    _log("pipeline", args)
    out = Path(args.output_dir)
    (out / "prompts").mkdir(parents=True, exist_ok=True)
    for source in args.sources.split(","):
        (out / "prompts" / f"{source}.pt").write_text("fake")
    if "prior" in args.stages.split(","):
        (out / "prior").mkdir(parents=True, exist_ok=True)
        (out / "prior" / "prior.pt").write_text("fake")
    return 0


def read_log(path):
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
