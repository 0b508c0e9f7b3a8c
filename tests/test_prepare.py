"""`attempt-dist prepare` into a local cache from a folder standing in for the hub, and the
one-line refusals of `train` and `sweep` when the cache (or the hub) lacks what they need.
No network: the hub is the folder `mirror` below, and its absence is a refused connection."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from attempt_dist import prepare as prep
from attempt_dist.errors import UserError
from tests.paths import DATA, REPO


def run_cli(*args, env_extra=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO), "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "attempt_dist.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def mirror(tmp_path):
    """The hub's layout for t5-small (its small files only) and RTE's two splits."""
    root = tmp_path / "mirror"
    model = root / "google-t5" / "t5-small"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 512}))
    (model / "tokenizer.json").write_text("{}")
    rte = root / "nyu-mll" / "glue" / "rte"
    rte.mkdir(parents=True)
    shutil.copy(DATA / "rte" / "train.jsonl", rte / "train.jsonl")
    shutil.copy(DATA / "rte" / "validation.jsonl", rte / "validation.jsonl")
    return root


def test_needs_name_each_pretrained_backbone_and_hub_split_once():
    needs = prep.needs_for(["t5-small", "t5-tiny", "t5-small"], ["rte", "mnli"])
    assert [n.key for n in needs] == ["t5-small", "rte/train", "rte/validation", "mnli/train",
                                      "mnli/validation_mismatched", "mnli/validation_matched"]
    assert prep.needs_for(["t5-small"], ["rte"], model_path="/w", data_dir="/d") == []
    assert prep.needs_for(["t5-small"], [], init="random") == []
    # the demo's backbone and tasks are shipped and generated: an online user's demo probes no hub
    # (the tests run with HF_HUB_OFFLINE set, under which the probe is skipped: hence these asserts)
    assert prep.needs_for(["t5-toy"], ["toy_last", "toy_reverse"]) == []
    from attempt_dist.sweep import load_sweep

    for demo in ("toy.yaml", "tiny.yaml"):
        assert prep.needs_of_sweep(load_sweep(REPO / "examples" / "sweeps" / demo)) == [], demo


def test_prepare_from_a_mirror_then_an_offline_train_reads_the_cache(mirror, tmp_path):
    cache = tmp_path / "cache"
    done = run_cli("prepare", "--models", "t5-small", "--tasks", "rte", "--cache", cache, "--mirror", mirror)
    assert done.returncode == 0, done.stderr
    assert "1 model(s), 2 data split(s)" in done.stdout and "ATTEMPT_DIST_PREPARED=" in done.stdout
    manifest = json.loads((cache / "attempt-dist" / "manifest.json").read_text())
    assert set(manifest["models"]) == {"t5-small"} and set(manifest["data"]) == {"rte/train", "rte/validation"}
    assert (cache / "attempt-dist" / "models" / "t5-small" / "config.json").is_file()
    rows = (cache / "attempt-dist" / "data" / "rte" / "validation.jsonl").read_text().splitlines()
    assert rows == (DATA / "rte" / "validation.jsonl").read_text().splitlines()

    # No --data-dir: the data comes from the prepared cache (the hub is unreachable here).
    out = tmp_path / "run"
    done = run_cli("train", "--model", "t5-tiny", "--method", "prompt", "--tasks", "rte", "--prompt-length", "4",
                   "--batch-size", "2", "--max-steps", "2", "--max-eval-examples", "2", "--max-length", "64",
                   "--max-target-length", "8", "--no-checkpoints", "--output-dir", out,
                   env_extra={prep.PREPARED_ENV: str(cache)})
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "result.json").read_text())
    assert record["config"]["data_dir"] == str(cache / "attempt-dist" / "data")

    # A second prepare finds everything and fetches nothing (an emptied mirror would fail).
    shutil.rmtree(mirror)
    again = run_cli("prepare", "--models", "t5-small", "--tasks", "rte", "--cache", cache, "--mirror", mirror)
    assert again.returncode == 0 and "fetching" not in again.stdout


def test_train_and_sweep_refuse_in_one_line_what_the_cache_lacks(tmp_path):
    env = {prep.PREPARED_ENV: str(tmp_path / "empty")}
    started = time.monotonic()
    done = run_cli("train", "--model", "t5-base", "--method", "prompt", "--tasks", "boolq",
                   "--output-dir", tmp_path / "run", env_extra=env)
    assert done.returncode == 2 and not (tmp_path / "run" / "result.json").exists()
    line, = done.stderr.strip().splitlines()
    assert "lacks t5-base's weights and tokenizer (google-t5/t5-base), boolq split train" in line
    assert f"attempt-dist prepare --models t5-base --tasks boolq --cache {tmp_path / 'empty'}" in line

    done = run_cli("sweep", REPO / "launch" / "sweeps" / "scaling.yaml", "--dry-run",
                   "--output-dir", tmp_path / "sweep", env_extra=env)
    assert done.returncode == 2
    line, = done.stderr.strip().splitlines()
    # the cells (boolq, multirc, wic) and the libraries their ATTEMPT cells train first (the six sources)
    assert "t5-small's weights" in line
    assert "--models t5-3b,t5-base,t5-large,t5-small --tasks boolq,mnli,multirc,qnli,qqp,record,squad,sst2,wic" in line
    assert time.monotonic() - started < 120  # seconds each, not minutes of hub retries


def test_an_unreachable_hub_is_one_line_after_one_attempt(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    attempts = []

    def refused(address, timeout=None):
        attempts.append(address)
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.setattr(prep, "_cached_by_the_libraries", lambda need: False)
    with pytest.raises(UserError, match=r"google-t5/t5-small\) must come from https://huggingface.co, which does "
                                         r"not answer \(ConnectionRefusedError\); .*attempt-dist prepare "
                                         r"--models t5-small --tasks rte"):
        prep.require_hub(prep.needs_for(["t5-small"], ["rte"]))
    assert attempts == [("huggingface.co", 443)]
    prep.require_hub(prep.needs_for(["t5-tiny"], []))  # nothing from the hub: no attempt
    assert len(attempts) == 1


def test_prepare_without_a_mirror_and_no_hub_is_one_line(monkeypatch, tmp_path):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    attempts = []

    def refused(address, timeout=None):
        attempts.append(address)
        raise socket.gaierror("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refused)
    needs = prep.needs_for(["t5-small"], ["rte"])
    with pytest.raises(UserError, match=r"prepare fetches t5-small's weights .* from https://huggingface.co, which "
                                         r"does not answer \(gaierror\); .* or pass --mirror DIR"):
        prep.prepare(needs, tmp_path / "cache")
    assert attempts == [("huggingface.co", 443)] and not (tmp_path / "cache").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE .* is set; unset it, or pass --mirror DIR"):
        prep.prepare(needs, tmp_path / "cache")
    assert len(attempts) == 1
