"""`plan` and `params` answer from the shape cache with the numbers they computed before it.

tests/recorded/ holds the JSON these commands printed on main before the cache existed
(commit 1c0d2c3; the commands are in RECORDED below; the two ATTEMPT plans re-recorded when its
prompt stopped making fp32 copies on a bf16 path, which saves 4.2 MB of activations at t5-3b
batch 32 and changes nothing else). Each one runs here three times in a
fresh cache: computed (a miss), from the cached counts and traces (model building disabled, so
a hit that still built the model fails), and replayed as a kept answer (the command itself
disabled); all three must equal the recording.
"""

import contextlib
import io
import json
import shutil

import pytest

from attempt_dist import shape_cache
from attempt_dist.cli import main
from tests.paths import REPO

RECORDED_DIR = REPO / "tests" / "recorded"
# Recorded without --host-mem (then not checked); replayed with more host memory than any
# configuration needs, which leaves every candidate as it was.
UNLIMITED_HOST = ["--host-mem", "1000000GiB"]
RECORDED = {
    "plan_t5-3b_attempt": ["plan", "--model", "t5-3b", "--method", "attempt", "--batch-size", "32",
                           "--host-mem", "128GiB"],
    "plan_t5-small_prompt_cpu": ["plan", "--model", "t5-small", "--method", "prompt", "--batch-size", "8",
                                 "--device", "cpu", "--gpu-mem-cap", "4GiB", *UNLIMITED_HOST],
    "plan_t5-base_attempt_tasks": ["plan", "--model", "t5-base", "--method", "attempt", "--tasks", "rte,boolq",
                                   "--batch-size", "16", "--host-mem", "64GiB"],
    "plan_t5-11b_finetune": ["plan", "--model", "t5-11b", "--method", "finetune", "--batch-size", "8",
                             "--gpu-mem-cap", "80GiB", *UNLIMITED_HOST],
    "plan_t5-large_adapter": ["plan", "--model", "t5-large", "--method", "adapter", "--batch-size", "12",
                              "--bottleneck", "16", *UNLIMITED_HOST],
    "params_default": ["params"],
    "params_small_base_n4": ["params", "--models", "t5-small,t5-base", "--methods", "attempt,prompt,spot",
                             "--num-tasks", "1,4", "--prompt-length", "50"],
}
SLOW = {"plan_t5-11b_finetune", "plan_t5-large_adapter", "plan_t5-3b_attempt", "params_default"}


def _json_of(argv: list[str]) -> object:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json"])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def _as_recorded(name: str, printed):
    """The printed JSON less what was added since the recording: the host memory given
    (UNLIMITED_HOST) and each candidate's short_of (None for these, all fit or GPU-bound)."""
    if name.startswith("params"):
        return printed
    recorded_host = json.loads((RECORDED_DIR / f"{name}.json").read_text())["request"]["host_mem"]
    printed["request"]["host_mem"] = recorded_host
    for candidate in [*printed["candidates"], printed["recommended"]]:
        if candidate is not None:
            candidate.pop("short_of")
    return printed


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in RECORDED])
def test_cached_answers_equal_the_recorded_ones(name, tmp_path, monkeypatch):
    monkeypatch.setenv(shape_cache.ROOT_ENV, str(tmp_path))
    monkeypatch.delenv(shape_cache.SWITCH_ENV, raising=False)
    recorded = json.loads((RECORDED_DIR / f"{name}.json").read_text())
    assert _as_recorded(name, _json_of(RECORDED[name])) == recorded
    assert list((tmp_path / "shapes").rglob("*.json")), "nothing was cached"

    def no_building(*args, **kwargs):
        raise AssertionError("a cache hit built the model")

    # The counts and traces alone (the printed answer forgotten): read back, never rebuilt.
    shutil.rmtree(tmp_path / "shapes" / "answers")
    monkeypatch.setattr("attempt_dist.model.params.build_on_meta", no_building)
    assert _as_recorded(name, _json_of(RECORDED[name])) == recorded

    # The printed answer: replayed without running the command at all.
    def no_running(*args, **kwargs):
        raise AssertionError("a kept answer ran the command")

    monkeypatch.setattr("attempt_dist.cli._run", no_running)
    assert _as_recorded(name, _json_of(RECORDED[name])) == recorded


def test_a_different_configuration_or_code_is_a_different_key(monkeypatch):
    base = shape_cache.cache_key("trace", {"model": "t5-small", "max_length": 256})
    assert shape_cache.cache_key("trace", {"model": "t5-small", "max_length": 257}) != base
    assert shape_cache.cache_key("params", {"model": "t5-small", "max_length": 256}) != base
    monkeypatch.setattr(shape_cache, "code_version", lambda: "edited")
    assert shape_cache.cache_key("trace", {"model": "t5-small", "max_length": 256}) != base


def test_an_unreadable_entry_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv(shape_cache.ROOT_ENV, str(tmp_path))
    calls = []
    compute = lambda: calls.append(1) or {"n": 7}  # noqa: E731
    assert shape_cache.cached("k", {"a": 1}, compute) == {"n": 7}
    entry, = (tmp_path / "shapes" / "k").glob("*.json")
    entry.write_text("{cut short")
    assert shape_cache.cached("k", {"a": 1}, compute) == {"n": 7}
    assert shape_cache.cached("k", {"a": 1}, compute) == {"n": 7}
    assert len(calls) == 2


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shapes")  # the second case reads the first one's trace


@pytest.mark.parametrize("host_flag", [[], ["--host-mem", "100MiB"]])
def test_plan_checks_host_memory_by_default_and_names_the_limit(host_flag, shared_cache, monkeypatch):
    # Without --host-mem the plan checks this machine's memory (here pretended to be 100 MiB).
    monkeypatch.setenv(shape_cache.ROOT_ENV, str(shared_cache))
    monkeypatch.setattr("attempt_dist.planning.auto.host_memory_bytes", lambda: 100 * 2**20)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["plan", "--model", "t5-small", "--method", "finetune", "--batch-size", "4", "--device", "cpu",
                     "--gpu-mem-cap", "1GiB", *host_flag, "--json"])
    report = json.loads(out.getvalue())
    assert code == 3 and report["recommended"] is None
    assert report["request"]["host_mem"] == 100 * 2**20
    short_of = {(c["layout"], c["activation_checkpointing"]): c["short_of"] for c in report["candidates"]}
    assert short_of[("zero0", False)] == "GPU"  # 1.19 GiB of weights, Adam and activations
    assert short_of[("zero2+offload(opt)", True)] == "host"  # 0.64 GiB on the GPU, 1.35 GiB of host
    assert "would fit the GPU but needs 1.4 GiB of host memory (0.1 GiB available" in report["notes"][0]
