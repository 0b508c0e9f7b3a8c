"""Faults after training: predict, export and plot never touch a run or sweep folder, export
--overwrite removes only what an earlier export wrote, and damaged artefacts, bad inputs and
devices that are not there end in one `error:` line and exit 2, checked before the model is built.

One 1-step t5-tiny prompt run serves every test; a test that could damage it works on a copy."""

import hashlib
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
import torch

from attempt_dist.finished import artifacts, predict
from attempt_dist.finished.artifacts import LEGACY_FILE, META_FILE, WEIGHTS_FILE
from attempt_dist.finished.export_folder import MANIFEST
from tests.train_helpers import TINY, launch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    launch([*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "1", "--no-checkpoints",
            "--output-dir", str(out)])
    return out.resolve()  # the messages name folders resolved


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run in tmp_path/runs/run, beside nothing else."""
    copy = tmp_path / "runs" / "run"
    shutil.copytree(trained, copy)
    return copy.resolve()


@pytest.fixture
def run_never_read(monkeypatch):
    """The run's files may not be read: the command must refuse its inputs before that."""
    def refuse(*args, **kwargs):
        raise AssertionError("the run was read before the command's inputs were checked")

    # predict imported first (above): it binds read_artifact at import, and must not bind this one
    monkeypatch.setattr(artifacts, "read_artifact", refuse)
    monkeypatch.setattr(predict, "read_artifact", refuse)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args) -> tuple[int, str]:
    """`attempt-dist ARGS` in this process: (exit code, stderr)."""
    from attempt_dist.cli import main

    err = StringIO()
    with redirect_stdout(StringIO()), redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, err.getvalue()


def one_line_error(args, *fragments: str) -> str:
    """Run the command; it must exit 2 with exactly one `error:` line holding every fragment."""
    code, err = cli(*args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- export --overwrite removes only what an export wrote ----------------------------------------

def test_export_overwrite_onto_the_parent_of_the_run_is_refused(run):
    before = snapshot(run.parent)
    one_line_error(["export", run, run.parent, "--format", "safetensors", "--overwrite"],
                   f"contains the exported run {run}")
    assert snapshot(run.parent) == before


def test_export_overwrite_into_the_runs_predictions_is_refused(run):
    before = snapshot(run)
    one_line_error(["export", run, run / "predictions", "--format", "safetensors", "--overwrite"],
                   f"lies inside the exported run {run}")
    assert snapshot(run) == before


def test_export_overwrite_onto_a_folder_holding_another_run_is_refused(trained, run):
    before = snapshot(run.parent)
    one_line_error(["export", trained, run.parent, "--format", "safetensors", "--overwrite"],
                   f"contains the run folder {run}")
    assert snapshot(run.parent) == before


def test_export_overwrite_through_a_symlink_to_a_run_is_refused(trained, run, tmp_path):
    (tmp_path / "link").symlink_to(run, target_is_directory=True)
    before = snapshot(run)
    one_line_error(["export", trained, tmp_path / "link", "--format", "safetensors", "--overwrite"],
                   f"is the run folder {run}")
    assert snapshot(run) == before


def test_export_into_a_sweep_folder_is_refused(trained, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"name": "s", "cells": []}))
    one_line_error(["export", trained, sweep / "export", "--format", "safetensors"],
                   f"lies inside the sweep folder {sweep}")
    assert sorted(p.name for p in sweep.iterdir()) == ["sweep.json"]


def test_export_overwrite_refuses_a_folder_no_export_wrote(trained, tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    one_line_error(["export", trained, out, "--format", "safetensors", "--overwrite"], f"no readable {MANIFEST}")
    assert [p.name for p in out.iterdir()] == ["notes.md"]


def test_export_overwrite_replaces_only_the_earlier_exports_files(trained, tmp_path):
    out = tmp_path / "export"
    assert cli("export", trained, out, "--format", "peft")[0] == 0
    (out / "notes.md").write_text("mine")
    assert cli("export", trained, out, "--format", "safetensors", "--overwrite")[0] == 0
    held = sorted(p.name for p in out.iterdir())
    assert held == sorted([MANIFEST, "README.md", META_FILE, WEIGHTS_FILE, "notes.md"])
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(["README.md", META_FILE, WEIGHTS_FILE])
    assert (out / "notes.md").read_text() == "mine"


def test_export_to_an_existing_file_is_one_line(trained, tmp_path, run_never_read):
    (tmp_path / "out").write_text("a file")
    one_line_error(["export", trained, tmp_path / "out", "--format", "safetensors"], "is a file")
    assert (tmp_path / "out").read_text() == "a file"


def test_plot_to_an_existing_file_is_one_line(trained, tmp_path):
    (tmp_path / "figures").write_text("a file")
    one_line_error(["plot", trained, "--out", tmp_path / "figures"], "is a file")


# --- predict -------------------------------------------------------------------------------------

def test_predict_output_inside_the_run_is_refused_naming_where_to_write(run, run_never_read):
    before = snapshot(run)
    one_line_error(["predict", run, "--text", "rte sentence1: a sentence2: b", "--device", "cpu",
                    "--output", run / "predictions" / "test.jsonl"],
                   f"lies inside the run folder {run}", f"--output {run.parent / 'run-predictions.jsonl'}")
    assert snapshot(run) == before


def _truncate(run: Path) -> None:
    data = (run / WEIGHTS_FILE).read_bytes()
    (run / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])


def _garbage_weights(run: Path) -> None:
    (run / WEIGHTS_FILE).write_bytes(b"not a safetensors file at all")


def _malformed_meta(run: Path) -> None:
    (run / META_FILE).write_text('{"format": "attempt-dist/trainable", "train": {')


def _garbage_legacy(run: Path) -> None:
    (run / WEIGHTS_FILE).unlink()
    (run / META_FILE).unlink()
    (run / LEGACY_FILE).write_bytes(b"garbage, not a pickle")


@pytest.mark.parametrize("damage, named", [(_truncate, WEIGHTS_FILE), (_garbage_weights, WEIGHTS_FILE),
                                           (_malformed_meta, META_FILE), (_garbage_legacy, LEGACY_FILE)],
                         ids=["truncated-safetensors", "garbage-safetensors", "malformed-trainable-json",
                              "garbage-legacy-pt"])
def test_predict_on_a_damaged_artefact_names_the_file(run, damage, named):
    damage(run)
    one_line_error(["predict", run, "--text", "rte sentence1: a sentence2: b", "--device", "cpu"],
                   f"{run / named} ", "truncated or corrupt")


def test_predict_non_utf8_input_is_one_line(trained, tmp_path, run_never_read):
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"input": "rte sentence1: caf\xe9 sentence2: b"}\n')
    one_line_error(["predict", trained, "--input", rows, "--device", "cpu"], f"--input {rows} is not UTF-8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_predict_on_cuda_without_cuda_is_one_line(trained, run_never_read):
    one_line_error(["predict", trained, "--text", "rte x", "--device", "cuda"], "no CUDA GPU is visible")


def test_predict_on_an_unknown_device_is_one_line(trained, run_never_read):
    one_line_error(["predict", trained, "--text", "rte x", "--device", "tpu9"], "'tpu9' is not one torch knows")
