"""A torch.profiler window over chosen optimizer steps of a real training run (benchmark hook).

    ATTEMPT_DIST_PROFILE_STEPS=5:7 python launch/train.py ...   # profile steps 5, 6 and 7

writes <output-dir>/profile/top_ops.txt (the operators and kernels that took the most device
time, or CPU time on a CPU run: torch's key_averages table), top_ops.json (the same rows as
data) and trace.json (a Chrome trace). The window opens when step FIRST-1 ends (so FIRST >= 2:
the first step is warm-up anyway) and closes when step LAST ends, after the device finished.
Unset, the hook does nothing and costs nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

PROFILE_ENV = "ATTEMPT_DIST_PROFILE_STEPS"
TOP_ROWS = 40


def parse_window(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    first, _, last = text.partition(":")
    try:
        window = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"{PROFILE_ENV} must be FIRST:LAST optimizer steps (e.g. 5:7), got {text!r}") from None
    if not 2 <= window[0] <= window[1]:
        raise ValueError(f"{PROFILE_ENV}={text!r}: need 2 <= FIRST <= LAST")
    return window


class StepProfiler:
    def __init__(self, out: Path, window: tuple[int, int] | None, enabled: bool = True) -> None:
        self.out, self.window = out, window if enabled else None
        self._profile = None

    @classmethod
    def from_env(cls, out: Path, enabled: bool) -> "StepProfiler":
        return cls(out, parse_window(os.environ.get(PROFILE_ENV, "")), enabled)

    def after_step(self, step: int) -> None:
        if self.window is None:
            return
        first, last = self.window
        if step == first - 1:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._profile = torch.profiler.profile(activities=activities, record_shapes=True)
            self._profile.__enter__()
        elif step == last and self._profile is not None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self._profile.__exit__(None, None, None)
            self._write(self._profile, steps=last - first + 1)
            self._profile = None

    def _write(self, profile, steps: int) -> None:
        folder = self.out / "profile"
        folder.mkdir(parents=True, exist_ok=True)
        cuda = torch.cuda.is_available()
        key = "self_device_time_total" if cuda else "self_cpu_time_total"
        averages = profile.key_averages()
        (folder / "top_ops.txt").write_text(
            f"steps {self.window[0]}..{self.window[1]} ({steps}), sorted by {key}\n"
            + averages.table(sort_by=key, row_limit=TOP_ROWS))
        rows = sorted(averages, key=lambda e: getattr(e, key), reverse=True)[:TOP_ROWS]
        (folder / "top_ops.json").write_text(json.dumps({
            "steps": steps, "sorted_by": key,
            "rows": [{"name": e.key, "calls": e.count, "self_us": getattr(e, key),
                      "self_us_per_step": getattr(e, key) / steps} for e in rows]}, indent=1))
        profile.export_chrome_trace(str(folder / "trace.json"))
