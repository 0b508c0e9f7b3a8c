"""Live metrics: RUN/metrics.jsonl lines, --report-to validation, TensorBoard and W&B backends
(W&B through a stand-in module: no network, no wandb package needed)."""

import sys
import types

import pytest

from attempt_dist.errors import UserError
from attempt_dist.training.tracking import METRICS_FILENAME, Tracker, parse_report_to, read_metrics

DEV = {"rte": {"accuracy": 50.0}, "cb": {"accuracy": 75.0, "f1_macro": 40.0}}


def run_steps(tracker, steps, losses_per_step=1):
    for step in steps:
        for k in range(losses_per_step):
            tracker.step_loss(float(step) + k)
        tracker.train(step=step, epoch=step / 10, lr={"prompts": 0.3 / step}, examples=4 * step,
                      examples_per_s=2.0 * step, memory={"peak_allocated_bytes": 2**30 * step})


def test_lines_are_flushed_as_they_happen_and_hold_the_numbers(tmp_path):
    tracker = Tracker(tmp_path, [], {}, enabled=True)
    run_steps(tracker, [1, 2], losses_per_step=2)
    # Read while the tracker is still open: the lines are on disk already.
    rows = read_metrics(tmp_path)
    assert [(r["kind"], r["step"], r["loss"]) for r in rows] == [("train", 1, 1.5), ("train", 2, 2.5)]
    assert rows[1]["lr"] == {"prompts": 0.15} and rows[1]["examples"] == 8 and rows[1]["examples_per_s"] == 4.0
    assert rows[1]["memory"] == {"peak_allocated_bytes": 2 * 2**30}
    tracker.evaluation(split="dev", step=2, epoch=0.2, score=62.5, metrics=DEV)
    tracker.train(step=3, epoch=0.3, lr={}, examples=12, examples_per_s=1.0, memory=None)  # no loss since: no line
    tracker.close()
    rows = read_metrics(tmp_path)
    assert len(rows) == 3
    assert {k: rows[2][k] for k in ("kind", "split", "step", "score", "metrics", "final")} == \
        {"kind": "eval", "split": "dev", "step": 2, "score": 62.5, "metrics": DEV, "final": False}


def test_resume_drops_the_lines_after_the_checkpoint_and_a_fresh_start_drops_all(tmp_path):
    tracker = Tracker(tmp_path, [], {}, enabled=True)
    run_steps(tracker, [1, 2, 3, 4])
    tracker.evaluation(split="dev", step=2, epoch=0.2, score=1.0, metrics={})
    tracker.evaluation(split="dev", step=4, epoch=0.4, score=2.0, metrics={})
    tracker.close()  # "crashed" after step 4; the last checkpoint was step 2
    resumed = Tracker(tmp_path, [], {}, enabled=True, resume_step=2)
    run_steps(resumed, [3])
    resumed.close()
    assert [(r["kind"], r["step"]) for r in read_metrics(tmp_path)] == \
        [("train", 1), ("train", 2), ("eval", 2), ("train", 3)]
    Tracker(tmp_path, [], {}, enabled=True).close()
    assert read_metrics(tmp_path) == []


def test_other_ranks_write_nothing(tmp_path):
    tracker = Tracker(tmp_path, ["tensorboard"], {}, enabled=False)
    run_steps(tracker, [1])
    tracker.evaluation(split="dev", step=1, epoch=0.1, score=1.0, metrics={})
    tracker.close()
    assert list(tmp_path.iterdir()) == []


def test_report_to_names(monkeypatch):
    assert parse_report_to("none") == []
    with pytest.raises(UserError, match="--report-to takes none, tensorboard, wandb"):
        parse_report_to("mlflow")
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(UserError, match="pip install wandb"):
        parse_report_to("wandb")


class FakeWandb(types.ModuleType):
    """The slice of the wandb API the tracker uses; records every call."""

    def __init__(self):
        super().__init__("wandb")
        self.inits, self.logged, self.finished = [], [], 0
        self.util = types.SimpleNamespace(generate_id=lambda: f"id{len(self.inits)}")

    def init(self, **kwargs):
        self.inits.append(kwargs)
        return types.SimpleNamespace(log=lambda values, step: self.logged.append((step, values)),
                                     finish=lambda: setattr(self, "finished", self.finished + 1))


def test_wandb_is_offline_without_credentials_and_resume_continues_the_same_run(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert parse_report_to("wandb") == ["wandb"]
    tracker = Tracker(tmp_path, ["wandb"], {"lr": 0.3}, enabled=True)
    run_steps(tracker, [1])
    tracker.evaluation(split="dev", step=1, epoch=0.1, score=62.5, metrics=DEV)
    tracker.close()
    first = fake.inits[0]
    assert (first["mode"], first["id"], first["config"], first["dir"]) == ("offline", "id0", {"lr": 0.3}, str(tmp_path))
    assert fake.logged[0] == (1, {"train/loss": 1.0, "train/examples_per_s": 2.0, "train/lr/prompts": 0.3,
                                  "train/peak_memory_gib": 1.0})
    assert fake.logged[1] == (1, {"dev/score": 62.5, "dev/rte/accuracy": 50.0, "dev/cb/accuracy": 75.0,
                                  "dev/cb/f1_macro": 40.0})
    assert fake.finished == 1
    monkeypatch.setenv("WANDB_MODE", "disabled")
    Tracker(tmp_path, ["wandb"], {}, enabled=True, resume_step=1).close()
    assert (fake.inits[1]["mode"], fake.inits[1]["id"]) == ("disabled", "id0")


def test_tensorboard_events_hold_the_same_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = Tracker(tmp_path, parse_report_to("tensorboard"), {}, enabled=True)
    run_steps(tracker, [1, 2, 3])
    tracker.evaluation(split="test", step=3, epoch=0.3, score=62.5, metrics=DEV, final=True)
    tracker.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert [(e.step, e.value) for e in events.Scalars("test_final/cb/f1_macro")] == [(3, 40.0)]
    assert (tmp_path / METRICS_FILENAME).exists()


def test_train_with_a_missing_reporter_exits_2_before_creating_the_run_folder(tmp_path, monkeypatch, capsys):
    from attempt_dist.training.recipe import main

    monkeypatch.setitem(sys.modules, "wandb", None)
    out = tmp_path / "run"
    assert main(["--model", "t5-tiny", "--method", "prompt", "--tasks", "rte", "--data-dir", "examples/data",
                 "--report-to", "wandb", "--output-dir", str(out)]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: --report-to wandb needs the wandb package: pip install wandb (or use --report-to none)"
    assert not out.exists()
