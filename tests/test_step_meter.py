"""attempt_dist.training.step_meter (steady-state figures with a fake clock) and loss_window (the step's
one read, divergence on any micro-batch)."""

import math

import pytest
import torch

from attempt_dist.model.backbones import get_spec
from attempt_dist.planning.flops import StepShape, step_flops
from attempt_dist.training.loss_window import LossWindow
from attempt_dist.training.step_meter import StepMeter


class FakeClock:
    def __init__(self, times):
        self.times = iter(times)

    def __call__(self):
        return next(self.times)


def _batch(lengths, input_len, target_len):
    mask = torch.zeros(len(lengths), input_len, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    labels = torch.full((len(lengths), target_len), -100)
    labels[:, :2] = 5  # two real target tokens per example
    return {"input_ids": torch.zeros_like(mask), "attention_mask": mask, "labels": labels}


def test_warmup_steps_are_left_out_and_figures_are_exact():
    config = get_spec("t5-tiny").config()
    # Step ends at t = 0, 10, 20 (warm-up), then 21, 23: the timed steps take 1 s and 2 s.
    meter = StepMeter(config, prompt_len=4, backbone_trainable=False, checkpointing=False, world_size=2,
                      peak=1e6, warmup=3, clock=FakeClock([0.0, 10.0, 20.0, 21.0, 23.0]))
    for _ in range(3):
        meter.micro_batch(_batch([9, 9], 9, 3))  # warm-up batches: not counted
        meter.step_end()
    assert meter.summary() is None
    meter.micro_batch(_batch([6, 2], 6, 3))
    meter.step_end()
    meter.micro_batch(_batch([4, 4, 4], 4, 2))
    meter.step_end()
    summary = meter.summary()
    assert summary["timed_steps"] == 2
    assert summary["step_time_s"] == pytest.approx(1.5)
    assert summary["examples_per_s"] == pytest.approx(5 * 2 / 3)  # two ranks
    real = (6 + 2 + 2 * 2) + (4 * 3 + 2 * 3)
    padded = 2 * (6 + 3) + 3 * (4 + 2)
    assert summary["tokens_per_s"] == pytest.approx(real * 2 / 3)
    assert summary["padding_fraction"] == pytest.approx(1 - real / padded)
    flops = (step_flops(config, StepShape(2, 6 + 4, 3), backbone_trainable=False, checkpointing=False).model
             + step_flops(config, StepShape(3, 4 + 4, 2), backbone_trainable=False, checkpointing=False).model)
    assert summary["model_tflops_per_s"] == pytest.approx(flops / 3 / 1e12)
    assert summary["mfu"] == pytest.approx(flops / 3 / 1e6)
    assert summary["hfu"] == summary["mfu"]  # no checkpointing


def test_restart_interval_leaves_evaluation_out():
    config = get_spec("t5-tiny").config()
    meter = StepMeter(config, prompt_len=0, backbone_trainable=True, checkpointing=False, warmup=1,
                      clock=FakeClock([0.0, 50.0, 52.0, 54.0]))
    for restart in (True, False, False):
        meter.micro_batch(_batch([3], 3, 2))
        meter.step_end()
        if restart:
            meter.restart_interval()  # an evaluation from t = 0 to t = 50
    assert meter.summary()["step_time_s"] == pytest.approx(2.0)
    assert meter.summary()["mfu"] is None  # no known peak


def test_a_profiled_window_is_not_timed():
    config = get_spec("t5-tiny").config()
    meter = StepMeter(config, prompt_len=0, backbone_trainable=True, checkpointing=False, warmup=1,
                      clock=FakeClock([0.0, 1.0, 11.0, 21.0, 22.0]))
    meter.leave_out((3, 4))  # steps 3 and 4 ran under the profiler: 10 s each
    for _ in range(5):
        meter.micro_batch(_batch([3], 3, 2))
        meter.step_end()
    summary = meter.summary()
    assert summary["timed_steps"] == 2 and summary["step_time_s"] == pytest.approx(1.0)
    assert summary["examples_per_s"] == pytest.approx(1.0)


def test_loss_window_reads_every_micro_batch_and_finds_a_bad_one():
    window = LossWindow(world_size=1)
    window.add(torch.tensor(1.5))
    window.add(torch.tensor(0.5))
    assert window.read() == (True, [1.5, 0.5])
    window.add(torch.tensor(float("nan")))
    window.add(torch.tensor(2.0))
    finite, losses = window.read()
    assert not finite and math.isnan(losses[0]) and losses[1] == 2.0
    with pytest.raises(RuntimeError):
        window.read()  # emptied by the read


def test_step_profiler_window_writes_the_top_ops(tmp_path):
    import json

    from attempt_dist.training.step_profiler import StepProfiler, parse_window

    assert parse_window("") is None and parse_window("5:7") == (5, 7) and parse_window("4") == (4, 4)
    for bad in ("x", "1:3", "5:4"):
        with pytest.raises(ValueError, match="ATTEMPT_DIST_PROFILE_STEPS"):
            parse_window(bad)
    profiler = StepProfiler(tmp_path, (2, 3))
    a = torch.randn(64, 64)
    for step in range(1, 5):
        if step in (2, 3):
            a = a @ a / 64  # only steps 2 and 3 are inside the window
        profiler.after_step(step)
    top = json.loads((tmp_path / "profile" / "top_ops.json").read_text())
    assert top["steps"] == 2
    matmuls = [row for row in top["rows"] if row["name"] == "aten::mm"]
    assert matmuls and matmuls[0]["calls"] == 2
    assert (tmp_path / "profile" / "trace.json").exists()
    StepProfiler(tmp_path / "off", None).after_step(1)
    assert not (tmp_path / "off").exists()
