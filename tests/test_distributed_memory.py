"""parse_size, apply_memory_cap, memory_report and is_oom (the CUDA paths through fakes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from attempt_dist import distributed as dist
from attempt_dist.distributed import memory as memory_mod
from attempt_dist.errors import UserError

GIB = 1024**3


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    monkeypatch.setattr(memory_mod, "_state", {"cap_bytes": None, "device_peak_bytes": None})


@pytest.mark.parametrize(
    "text,expected",
    [("24GiB", 24 * 2**30), ("24 gib", 24 * 2**30), ("40GB", 40 * 10**9), ("512MiB", 512 * 2**20),
     ("500MB", 500 * 10**6), ("1.5GiB", 3 * 2**29), ("24G", 24 * 2**30), ("1024", 1024), (2048, 2048)],
)
def test_parse_size(text, expected):
    assert dist.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "24 GiBs", "-1GiB", "0", "twelve", "1e9", "24 PB"])
def test_parse_size_rejects(text):
    with pytest.raises(UserError, match="size"):
        dist.parse_size(text)


def _fake_cuda(monkeypatch, total: int) -> list:
    calls: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=total))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda fraction, device: calls.append((fraction, device)))
    return calls


def test_cap_sets_the_fraction_of_the_card(monkeypatch):
    calls = _fake_cuda(monkeypatch, total=80 * GIB)
    info = dist.apply_memory_cap(dist.parse_size("24GiB"))
    assert calls == [(0.3, 0)]
    assert info == {"cap_bytes": 24 * GIB, "applied": True, "device_total_bytes": 80 * GIB, "fraction": 0.3}


def test_cap_larger_than_the_card_or_tiny_is_refused(monkeypatch):
    calls = _fake_cuda(monkeypatch, total=16 * GIB)
    with pytest.raises(UserError, match="larger than the GPU"):
        dist.apply_memory_cap(24 * GIB)
    with pytest.raises(UserError, match="below 1.00 GiB"):
        dist.apply_memory_cap(512 * 2**20)
    assert calls == []


def test_cap_on_cpu_records_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dist.apply_memory_cap(24 * GIB) == {"cap_bytes": 24 * GIB, "applied": False,
                                               "device_total_bytes": None, "fraction": None}
    report = dist.memory_report()
    assert report["cap_bytes"] == 24 * GIB and report["device_peak_bytes"] is None
    assert dist.apply_memory_cap(None)["cap_bytes"] is None
    assert dist.memory_report()["cap_bytes"] is None


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU report")
def test_cpu_report_is_the_process_peak_rss():
    # getrusage and /proc's high-water mark are kept apart by the kernel and may lag by a few
    # pages; a unit slip (KiB vs bytes) would be off by 1024x.
    peak = dist.memory_report()["peak_allocated_bytes"]
    assert peak == pytest.approx(_status_kib("VmHWM") * 1024, rel=0.02)
    assert peak >= 0.98 * _status_kib("VmRSS") * 1024


def test_gpu_report_uses_allocator_peak_and_highest_device_usage(monkeypatch):
    _fake_cuda(monkeypatch, total=80 * GIB)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 7 * GIB)
    free = iter([70 * GIB, 75 * GIB])  # used: 10 GiB at the log point, 5 GiB at report time
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (next(free), 80 * GIB))
    dist.apply_memory_cap(24 * GIB)
    assert dist.sample_device_memory() == 10 * GIB
    assert dist.memory_report() == {"peak_allocated_bytes": 7 * GIB, "device_peak_bytes": 10 * GIB, "cap_bytes": 24 * GIB}


def test_is_oom():
    assert dist.is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert dist.is_oom(RuntimeError("CUDA error: out of memory"))
    try:
        try:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB")
        except RuntimeError as inner:
            raise ValueError("step failed") from inner
    except ValueError as wrapped:
        assert dist.is_oom(wrapped)
    assert not dist.is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not dist.is_oom(ValueError("out of memory"))  # not a torch error
    assert "zero3_offload" in dist.OOM_HINT and "--batch-size" in dist.OOM_HINT
