"""The losses of one optimizer step, kept on the device and read by the host once per step.

Reading a GPU value on the host (loss.item(), a bool tested in Python) waits for every queued
kernel: done per micro-batch, it stalls the launch queue once per forward. The training loop
adds each micro-batch's loss here and reads the window once per optimizer step, after the
forward of its last micro-batch and before that backward (whose gradient collectives would
wait for a stopped rank without --dist-timeout's bound; this all-reduce is bounded): one sync
per step, which also tells whether any rank's loss was not finite, so a divergence still stops
the run before the update at the same step.
"""

from __future__ import annotations

import torch


class LossWindow:
    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self._losses: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor) -> None:
        self._losses.append(loss.detach().float().reshape(()))

    def read(self) -> tuple[bool, list[float]]:
        """(every rank's losses finite?, this rank's micro-batch losses) and empty the window."""
        if not self._losses:
            raise RuntimeError("no loss was added since the last read")
        losses = torch.stack(self._losses)
        self._losses = []
        bad = (~torch.isfinite(losses)).any().float().reshape(1)  # stays on the loss's device
        if self.world_size > 1:
            torch.distributed.all_reduce(bad)
        values = torch.cat([bad, losses]).tolist()  # the one host sync
        return values[0] == 0, values[1:]
