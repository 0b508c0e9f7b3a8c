"""Bytes of weights, gradients and optimizer state per rank, for each ZeRO layout.

The accounting is DeepSpeed's own (bf16 mixed precision with Adam), split in two because a
frozen backbone costs only its weights: `trainable` parameters carry low-precision weights and
gradients, an fp32 master copy, fp32 gradients and two Adam moments (2 + 2 + 4 + 4 + 8 = 20
bytes each, fp32 grads and optimizer state sharded over ranks from stage 2 on), `frozen` ones
only their low-precision weights (sharded from stage 3 on). With nothing frozen these numbers
are exactly `estimate_zero2_model_states_mem_needs` / `estimate_zero3_model_states_mem_needs`
(deepspeed.runtime.zero), which tests/test_planning.py checks against the installed DeepSpeed,
except for one thing the estimators leave out and a GPU showed: ZeRO-2 with optimizer offload
keeps the low-precision gradients on the device (below).
"""

from __future__ import annotations

from dataclasses import dataclass

# Pinned host buffers are over-allocated; DeepSpeed's estimators use the same factor.
HOST_BUFFER_FACTOR = 1.5
FP32 = 4


@dataclass(frozen=True)
class ZeroLayout:
    stage: int
    offload_optimizer: bool = False
    offload_param: bool = False

    def __post_init__(self) -> None:
        if self.stage not in (0, 2, 3):
            raise ValueError(f"ZeRO stage must be 0, 2 or 3, not {self.stage}")
        if self.offload_param and (self.stage != 3 or not self.offload_optimizer):
            raise ValueError("parameter offload needs ZeRO-3 with optimizer offload")
        if self.offload_optimizer and self.stage == 0:
            raise ValueError("optimizer offload needs ZeRO stage 2 or 3")

    @property
    def name(self) -> str:
        if self.offload_param:
            return f"zero{self.stage}+offload(param,opt)"
        if self.offload_optimizer:
            return f"zero{self.stage}+offload(opt)"
        return f"zero{self.stage}"


LAYOUTS = [ZeroLayout(0), ZeroLayout(2), ZeroLayout(2, True), ZeroLayout(3), ZeroLayout(3, True),
           ZeroLayout(3, True, True)]


@dataclass(frozen=True)
class ModelStates:
    """Per-rank device bytes by component, and the node's host bytes for offload."""

    frozen_weights: int
    trainable_weights: int
    gradients: int
    optimizer_state: int
    gathered_layers: int
    """ZeRO-3: the largest layer's weights and gradients gathered whole while it runs."""
    host: int

    @property
    def device(self) -> int:
        return self.frozen_weights + self.trainable_weights + self.gradients + self.optimizer_state + self.gathered_layers


def model_states(layout: ZeroLayout, *, trainable: int, frozen: int, largest_layer: int,
                 world_size: int = 1, weight_bytes: int = 2) -> ModelStates:
    """Per-rank bytes on one node of `world_size` ranks.

    weight_bytes: 2 for bf16 training (GPU); 4 for fp32 (the CPU path), which keeps no separate
    fp32 master weights or gradients. largest_layer: parameters of the largest single module
    (ZeRO-3 gathers modules whole while they run).
    """
    n, w, p = world_size, weight_bytes, trainable
    mixed = w < FP32
    master = FP32 * p if mixed else 0       # fp32 copy of the trainable weights
    fp32_grads = FP32 * p if mixed else 0   # fp32 gradients the optimizer steps on
    adam = 2 * FP32 * p                     # exp_avg, exp_avg_sq
    if layout.stage == 0:
        return ModelStates(w * frozen, w * p, w * p + fp32_grads, master + adam, 0, 0)
    if layout.stage == 2:
        if layout.offload_optimizer:
            host = int(p * max(4 * n, 16) * HOST_BUFFER_FACTOR)
            # The estimator counts no device gradients here, but t5-3b fine-tuning on an H200
            # (bf16, 1 rank, benchmarks/results/gpu-h200-2026-11-26-full-length) peaked at
            # exactly weights + bf16 gradients (10.62 GiB = 2 x 5.31): each parameter's gradient
            # stays on the device until it is copied to the host fp32 partition. Several ranks:
            # assumed to shrink with the partition (unmeasured).
            return ModelStates(w * frozen, w * p, w * p // n, 0, 0, host)
        return ModelStates(w * frozen, w * p, (w * p + fp32_grads) // n, (master + adam) // n, 0, 0)
    gathered = 2 * w * largest_layer  # weights and gradients of the largest module, whole
    if layout.offload_param:
        # The low-precision partitions live pinned on the host too; frozen ones need nothing else.
        host = int(((16 + w) * p + w * frozen) * HOST_BUFFER_FACTOR)
        return ModelStates(0, 0, 0, 0, gathered, host)
    if layout.offload_optimizer:
        host = int(16 * p * HOST_BUFFER_FACTOR)
        return ModelStates(w * frozen // n, w * p // n, 0, 0, gathered, host)
    # Stage 3 reduces low-precision gradients straight into the fp32 partitions.
    return ModelStates(w * frozen // n, w * p // n, (fp32_grads or w * p) // n, (master + adam) // n, gathered, 0)
