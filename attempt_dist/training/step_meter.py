"""Steady-state throughput of a training run: the first optimizer steps left out, then step
time, examples/s, real (non-padding) tokens/s, padding, and MFU/HFU (attempt_dist.planning.flops).

    meter = StepMeter(t5_config, prompt_len=100, backbone_trainable=False, checkpointing=False,
                      world_size=1, peak=peak_flops(device_name, "bf16"))
    for each micro-batch:   meter.micro_batch(batch)          # the collated CPU batch
    after each optimizer step, once the device has finished it:  meter.step_end()
    meter.summary()   # None until a step past the warm-up has been timed

A step's time runs from the end of the previous step to the end of this one, so it includes
collation and the host work between steps: what a run really pays. "The end of a step" must
be a point where the host has waited for the device (the training loop reads the step's loss
there: one sync per step); an interval between two such points is then device time.

Figures are rank 0's: examples and tokens are multiplied by the world size for the run's
rate; FLOPs, MFU and HFU are per device. Tokens count the inputs and targets; the prompt
rows are not tokens (they count in the FLOPs: the encoder computes them).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from ..planning.flops import Flops, StepShape, step_flops
from .loss_window import LossWindow
from .step_profiler import StepProfiler

WARMUP_STEPS = 3  # left out of the steady state: allocator growth, kernel selection, first compiles


class StepMeter:
    def __init__(self, config, *, prompt_len: int, backbone_trainable: bool, checkpointing: bool,
                 world_size: int = 1, peak: float | None = None, warmup: int = WARMUP_STEPS,
                 clock=time.perf_counter) -> None:
        self.config, self.prompt_len = config, prompt_len
        self.backbone_trainable, self.checkpointing = backbone_trainable, checkpointing
        self.world_size, self.peak, self.warmup, self.clock = world_size, peak, warmup, clock
        self.steps = 0
        self._last_end: float | None = None
        self._pending = self._zero()
        self._timed = self._zero()
        self._step_times: list[float] = []
        self._left_out: tuple[int, int] | None = None

    def leave_out(self, window: tuple[int, int] | None) -> None:
        """Steps FIRST..LAST (a profiler's window: slowed by the profiling) are not timed."""
        self._left_out = window

    @staticmethod
    def _zero() -> dict:
        return {"examples": 0, "real_tokens": 0, "padded_tokens": 0, "flops": Flops(0.0, 0.0, 0.0)}

    def micro_batch(self, batch: dict) -> None:
        """Count one collated micro-batch (CPU tensors: input_ids, attention_mask, labels)."""
        batch_size, input_len = batch["input_ids"].shape
        target_len = batch["labels"].shape[1]
        real = int(batch["attention_mask"].sum()) + int((batch["labels"] >= 0).sum())
        shape = StepShape(batch_size, input_len + self.prompt_len, target_len)
        pending = self._pending
        pending["examples"] += batch_size
        pending["real_tokens"] += real
        pending["padded_tokens"] += batch_size * (input_len + target_len)
        pending["flops"] = pending["flops"] + step_flops(self.config, shape, backbone_trainable=self.backbone_trainable,
                                                         checkpointing=self.checkpointing)

    def step_end(self) -> None:
        """An optimizer step ended (and the device with it)."""
        now = self.clock()
        self.steps += 1
        profiled = self._left_out is not None and self._left_out[0] <= self.steps <= self._left_out[1]
        if self.steps > self.warmup and self._last_end is not None and not profiled:
            self._step_times.append(now - self._last_end)
            for key, value in self._pending.items():
                self._timed[key] = self._timed[key] + value
        self._last_end = now
        self._pending = self._zero()

    def restart_interval(self) -> None:
        """Evaluation or a checkpoint ran since step_end: the next step's time starts now."""
        if self._last_end is not None:
            self._last_end = self.clock()

    def summary(self) -> dict | None:
        """The steady state so far, or None before any step past the warm-up was timed."""
        if not self._step_times:
            return None
        seconds = sum(self._step_times)
        timed, world = self._timed, self.world_size
        model_rate = timed["flops"].model / seconds
        hardware_rate = timed["flops"].hardware / seconds
        return {
            "warmup_steps": self.warmup,
            "timed_steps": len(self._step_times),
            "step_time_s": seconds / len(self._step_times),
            "step_time_median_s": statistics.median(self._step_times),
            "examples_per_s": timed["examples"] * world / seconds,
            "tokens_per_s": timed["real_tokens"] * world / seconds,
            "padding_fraction": 1.0 - timed["real_tokens"] / max(timed["padded_tokens"], 1),
            "model_tflops_per_s": model_rate / 1e12,
            "mfu": model_rate / self.peak if self.peak else None,
            "hfu": hardware_rate / self.peak if self.peak else None,
            "peak_tflops": self.peak / 1e12 if self.peak else None,
        }


def meter_for_run(model, method_cfg, ds_config: dict, *, checkpointing: bool, world_size: int) -> StepMeter:
    """The meter of a training run of `model` (a WrappedT5) under `ds_config`, on this process's device."""
    from ..planning.flops import peak_flops

    backbone = model.backbone
    params = list(backbone.parameters())
    trainable = sum(int(getattr(p, "ds_numel", p.numel())) for p in params if p.requires_grad)
    total = sum(int(getattr(p, "ds_numel", p.numel())) for p in params)
    prompt_len = int(getattr(method_cfg, "prompt_length", 0) or 0) if model.prompt is not None else 0
    return StepMeter(backbone.config, prompt_len=prompt_len,
                     # fine-tuning trains (nearly) the whole backbone; the other methods a sliver of it
                     backbone_trainable=trainable > total / 2, checkpointing=checkpointing,
                     world_size=world_size, peak=peak_flops(device_name(), device_dtype(ds_config)))


def device_dtype(ds_config: dict) -> str:
    """The compute dtype a DeepSpeed config trains in: "bf16", "fp16" or "fp32"."""
    for name in ("bf16", "fp16"):
        if (ds_config.get(name) or {}).get("enabled") is True:  # load_ds_config resolved "auto"
            return name
    return "fp32"


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


@dataclass
class StepInstruments:
    """What the training loop measures: the steady-state meter, the step's losses (read once per
    optimizer step: the loop's one host sync) and the optional profiler, whose steps the meter
    leaves out."""

    meter: StepMeter
    losses: LossWindow
    profiler: StepProfiler

    @classmethod
    def for_run(cls, recipe, model) -> "StepInstruments":
        cfg, info = recipe.cfg, recipe.info
        meter = meter_for_run(model, recipe.method_cfg, recipe.ds_config, checkpointing=cfg.activation_checkpointing,
                              world_size=info.world_size)
        profiler = StepProfiler.from_env(recipe.out, enabled=info.is_main)
        meter.leave_out(profiler.window)
        return cls(meter, LossWindow(info.world_size), profiler)

    def step_end(self, step: int) -> None:
        self.meter.step_end()
        self.profiler.after_step(step)
