"""Live metrics of a training run: RUN/metrics.jsonl always, TensorBoard and W&B on request.

One JSON object per line, appended and flushed as it happens (rank 0 only), so the file grows
during the run and `tail -f` or a notebook can follow it:

    {"kind": "train", "step": 20, "epoch": 0.5, "loss": 1.93, "lr": {"prompt": 0.29},
     "examples": 640, "examples_per_s": 41.2, "memory": {"peak_allocated_bytes": ...}, "time": ...}
    {"kind": "eval", "split": "dev", "step": 20, "epoch": 0.5, "score": 71.2,
     "metrics": {"rte": {"accuracy": 71.2}}, "final": false, "time": ...}

`loss` is the mean of rank 0's step losses since the previous train line; `examples_per_s` is
training examples (all ranks) per training second so far, as in result.json. The run's final
dev and test evaluations (best weights) are eval lines with "final": true. On --resume from
step S the lines after S (written after the checkpoint, then lost) are dropped first, so every
step appears once.

--report-to tensorboard writes the same scalars to RUN/tensorboard/ (torch's SummaryWriter;
needs the tensorboard package); --report-to wandb logs them to Weights & Biases (needs wandb;
WANDB_MODE is honoured, and without WANDB_MODE or WANDB_API_KEY the run is logged offline
into RUN/wandb/, so a machine without network never blocks on a login).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from ..cli_args import split_csv
from ..errors import UserError
from ..atomic_files import read_json, write_json_atomic, write_jsonl_atomic

METRICS_FILENAME = "metrics.jsonl"
REPORTERS = ("tensorboard", "wandb")
_NEEDS = {"tensorboard": "tensorboard", "wandb": "wandb"}  # reporter -> the package it imports


def parse_report_to(text: str) -> list[str]:
    """'none' -> []; 'tensorboard,wandb' -> both; an unknown or missing package is a UserError."""
    names = [n for n in split_csv(text) if n != "none"]
    for name in names:
        if name not in REPORTERS:
            raise UserError(f"--report-to takes none, {', '.join(REPORTERS)} or a comma-separated list, got {name!r}")
        try:
            __import__(_NEEDS[name])
        except ImportError:
            raise UserError(f"--report-to {name} needs the {_NEEDS[name]} package: pip install {_NEEDS[name]} "
                            "(or use --report-to none)") from None
    return names


def read_metrics(out_dir: str | Path) -> list[dict]:
    """The file's rows. A last line cut short (the run was killed mid-write) is dropped with a
    warning: the step it logged is retrained on --resume; a bad line before the last is an error."""
    path = Path(out_dir) / METRICS_FILENAME
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise UserError(f"{path}:{number} is not a JSON line; remove that line (or the file) and rerun") from None
            print(f"warning: {path}: dropped its torn last line {number} (the run was stopped while writing it)",
                  file=sys.stderr, flush=True)
    return rows


class MetricsLog:
    """RUN/metrics.jsonl, appended one flushed line at a time."""

    def __init__(self, out_dir: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(out_dir) / METRICS_FILENAME
        if resume_step is None:
            self.path.unlink(missing_ok=True)  # a fresh start: the previous attempt's lines are not this run's
        elif self.path.exists():
            kept = [row for row in read_metrics(out_dir) if row.get("step", 0) <= resume_step]
            write_jsonl_atomic(self.path, kept)
        self._handle = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._handle.write(json.dumps(row) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _scalars(row: dict) -> dict[str, float]:
    """The numbers of a metrics line under TensorBoard-style tags (train/loss, dev/rte/accuracy, ...)."""
    if row["kind"] == "train":
        found = {"train/loss": row["loss"], "train/examples_per_s": row["examples_per_s"]}
        found.update({f"train/lr/{group}": lr for group, lr in row["lr"].items()})
        steady = row.get("steady") or {}
        found.update({f"train/steady/{key}": steady[key] for key in ("examples_per_s", "tokens_per_s", "mfu")
                      if steady.get(key) is not None})
        peak = (row.get("memory") or {}).get("peak_allocated_bytes")
        if peak is not None:
            found["train/peak_memory_gib"] = peak / 2**30
        return found
    prefix = f"{row['split']}_final" if row.get("final") else row["split"]
    found = {f"{prefix}/score": row["score"]}
    for task, metrics in row["metrics"].items():
        found.update({f"{prefix}/{task}/{name}": value for name, value in metrics.items()})
    return found


class _TensorBoard:
    def __init__(self, out_dir: Path, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = out_dir / "tensorboard"
        if resume_step is None:  # a fresh start: no events of an earlier attempt in the same curves
            shutil.rmtree(folder, ignore_errors=True)
        # purge_step: on --resume, events after the resumed step (written before a crash) are discarded.
        self.writer = SummaryWriter(str(folder),
                                    purge_step=None if resume_step is None else resume_step + 1)

    def log(self, row: dict) -> None:
        for tag, value in _scalars(row).items():
            self.writer.add_scalar(tag, value, global_step=row["step"], walltime=row["time"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _WandB:
    ID_FILE = "wandb_run.json"  # the run's W&B id, so that --resume continues the same W&B run

    def __init__(self, out_dir: Path, config: dict, resume_step: int | None) -> None:
        import wandb

        id_path = out_dir / self.ID_FILE
        run_id = read_json(id_path)["id"] if (resume_step is not None and id_path.exists()) else wandb.util.generate_id()
        write_json_atomic(id_path, {"id": run_id})
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "attempt-dist"), id=run_id, resume="allow",
                              name=out_dir.name, dir=str(out_dir), config=config, mode=mode)

    def log(self, row: dict) -> None:
        self.run.log(_scalars(row), step=row["step"])

    def close(self) -> None:
        self.run.finish()


class Tracker:
    """metrics.jsonl plus the --report-to backends; every method is a no-op off rank 0."""

    def __init__(self, out_dir: str | Path, report_to: list[str], config: dict, *, enabled: bool,
                 resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.backends: list = []
        self._window: list[float] = []
        if not enabled:
            return
        out = Path(out_dir)
        self.log = MetricsLog(out, resume_step)
        if "tensorboard" in report_to:
            self.backends.append(_TensorBoard(out, resume_step))
        if "wandb" in report_to:
            self.backends.append(_WandB(out, config, resume_step))

    def _emit(self, row: dict) -> None:
        row["time"] = time.time()
        self.log.write(row)
        for backend in self.backends:
            backend.log(row)

    def step_loss(self, loss: float) -> None:
        """Every optimizer step's loss, averaged into the next train line."""
        if self.enabled:
            self._window.append(loss)

    def train(self, *, step: int, epoch: float, lr: dict[str, float], examples: int, examples_per_s: float,
              memory: dict | None, steady: dict | None = None) -> None:
        """steady: attempt_dist.training.step_meter's summary so far (None before the warm-up is over)."""
        if not self.enabled or not self._window:
            return
        loss = sum(self._window) / len(self._window)
        self._window = []
        self._emit({"kind": "train", "step": step, "epoch": epoch, "loss": loss, "lr": lr, "examples": examples,
                    "examples_per_s": examples_per_s, "memory": memory, "steady": steady})

    def evaluation(self, *, split: str, step: int, epoch: float, score: float, metrics: dict,
                   final: bool = False) -> None:
        if self.enabled:
            self._emit({"kind": "eval", "split": split, "step": step, "epoch": epoch, "score": score,
                        "metrics": metrics, "final": final})

    def close(self) -> None:
        if not self.enabled:
            return
        for backend in self.backends:
            backend.close()
        self.log.close()
