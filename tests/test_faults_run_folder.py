"""Faults around a training run's folder: what is not a run is never touched, --overwrite loses
nothing until the new run has a checkpoint, and Ctrl-C, a full disk or a torn metrics line end
in one line, never a traceback.

The runs are t5-tiny for 1-2 steps, in this process (the trainer's main, as `attempt-dist train`
calls it); only Ctrl-C, which needs a real signal and exit code, runs in a subprocess.
"""

import errno
import io
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from attempt_dist.training import checkpoint as ckpt
from attempt_dist.training.failure import EXIT_DIVERGED, EXIT_INTERRUPTED
from attempt_dist.training.run_folder import RUN_MARKER, is_run_folder
from tests.test_faults import PROMPT, snapshot
from tests.train_helpers import launch, result, startup_hook

pytestmark = pytest.mark.slow
RUN = [*PROMPT, "--max-steps", "1", "--save-every", "1"]


def train_here(argv: list[str]) -> int:
    """The trainer's main in this process, as the sweep's debug executor runs it: it leaves no
    process group or launcher variables behind, so the next run here starts afresh."""
    from attempt_dist.training.recipe import main

    return main(argv)


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err[-3000:]
    return [line for line in err.splitlines() if line.startswith("error: ")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-step prompt run (result.json, checkpoints step1 and best)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train_here([*RUN, "--output-dir", str(out)]) == 0
    assert (out / "result.json").exists() and ckpt.latest_tag(out) == "step1"
    return out


@pytest.fixture
def old_run(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out, symlinks=True)
    return out


# --- what is not a run is never touched -------------------------------------------------------

def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "debug").mkdir(parents=True)
    (project / "logs").mkdir()
    (project / "README.md").write_text("# my project\n")
    (project / "config.json").write_text('{"lr": 1}\n')
    (project / "debug" / "notes.txt").write_text("mine\n")
    (project / "logs" / "server.log").write_text("mine\n")
    return project


@pytest.mark.parametrize("extra", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_a_folder_that_is_not_a_run_is_refused_and_left_as_it_was(tmp_path, capsys, extra):
    project = _project(tmp_path)
    before = snapshot(project)
    assert train_here([*RUN, "--output-dir", str(project), *extra]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert str(project) in line and "not a training run" in line and "README.md" in line, line
    assert snapshot(project) == before and sorted(p.name for p in project.iterdir()) == [
        "README.md", "config.json", "debug", "logs"]


@pytest.mark.parametrize("name, text, is_run", [
    (RUN_MARKER, "{}", True),
    ("config.json", '{"train": {"method": "prompt"}, "deepspeed": {}}', True),  # a run from before the mark
    ("failure.20261203T101500.json", '{"status": "failed", "reason": "cut", "config": {}}', True),  # a sweep's
    ("config.json", '{"train": 1}', False),
    ("result.json", '{"accuracy": 1}', False),
    ("result.json", '{"status": "ok", "config": {}}', False),
])
def test_what_makes_a_folder_a_run_folder(tmp_path, name, text, is_run):
    (tmp_path / name).write_text(text)
    assert is_run_folder(tmp_path) == is_run


def test_an_empty_output_dir_is_refused_and_the_current_folder_left_alone(tmp_path, monkeypatch, capsys):
    here = _project(tmp_path)
    monkeypatch.chdir(here)
    before = snapshot(here)
    assert train_here([*RUN, "--output-dir", ""]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "--output-dir is empty" in line, line
    assert snapshot(here) == before and not (here / ".lock").exists()


# --- --overwrite keeps the old run until the new one has a checkpoint -----------------------------

def test_overwrite_that_fails_before_its_first_checkpoint_restores_the_old_run(old_run, capsys):
    before = snapshot(old_run)
    # An update past float32's range: the new run diverges at step 1, before any checkpoint.
    code = train_here([*RUN, "--lr", "1e38", "--output-dir", str(old_run), "--overwrite"])
    assert code == EXIT_DIVERGED
    (line,) = error_lines(capsys.readouterr().err)
    assert "overflowed at step 1" in line and "previous run" in line and "restored" in line, line
    assert snapshot(old_run) == before  # every file of the finished run, as it was; nothing of the new one
    assert result(old_run)["steps"] == 1


def test_a_run_refused_by_the_lock_leaves_the_owners_replaced_run_alone(old_run, capsys):
    """Another run holds the folder mid --overwrite (its old run set aside): a second run stops
    at the lock and restores nothing of the owner's."""
    from attempt_dist.training.overwrite import ASIDE
    from attempt_dist.training.runlock import FolderLock

    aside = old_run / ASIDE
    aside.mkdir()
    shutil.move(old_run / "result.json", aside / "result.json")
    before = snapshot(old_run)
    with FolderLock(old_run, "training run"):
        assert train_here([*RUN, "--output-dir", str(old_run), "--overwrite"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "in use by another training run" in line, line
    assert snapshot(old_run) == before


def test_overwrite_of_a_run_with_a_symlinked_subfolder_never_reaches_outside(old_run, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the run's\n")
    shutil.rmtree(old_run / "predictions")
    (old_run / "predictions").symlink_to(outside, target_is_directory=True)
    assert train_here([*RUN, "--output-dir", str(old_run), "--overwrite"]) == 0
    assert (outside / "keep.txt").read_text() == "not the run's\n" and sorted(os.listdir(outside)) == ["keep.txt"]
    assert not (old_run / "predictions").is_symlink() and (old_run / "predictions" / "dev.jsonl").exists()
    # Nothing of the old run is left aside once the new one finished.
    assert [p.name for p in old_run.iterdir() if p.name.startswith(".") and p.is_dir()] == []
    assert "error" not in capsys.readouterr().err


@pytest.mark.parametrize("cut", ["set aside", "mid-move", "dropped"])
def test_an_overwrite_killed_at_any_step_is_completed_by_the_next_run_there(tmp_path, cut):
    """A kill -9 leaves .replaced-run (no checkpoint yet: the old run comes back), .moving (a move
    cut short: its files go back) or .dropped (the new run had its checkpoint: the old one goes)."""
    from attempt_dist.training import overwrite
    from attempt_dist.training.run_folder import RUN_ARTIFACTS

    out = tmp_path / "run"
    (out / "checkpoints" / "step1").mkdir(parents=True)
    (out / "checkpoints" / "step1" / "model.pt").write_text("old weights")
    (out / "result.json").write_text("old result")
    old = snapshot(out)
    overwrite.set_old_run_aside(out, RUN_ARTIFACTS)
    (out / "config.json").write_text("the new run's")
    if cut == "mid-move":
        (out / "config.json").unlink()
        os.rename(out / overwrite.ASIDE, out / overwrite.MOVING)
        os.rename(out / overwrite.MOVING / "result.json", out / "result.json")
    if cut == "dropped":
        os.rename(out / overwrite.ASIDE, out / overwrite.DROPPED)
    overwrite.finish_cut_moves(out, RUN_ARTIFACTS)
    if cut == "dropped":
        assert set(snapshot(out)) == {"config.json"}  # the new run's alone
    else:
        assert snapshot(out) == old


def test_a_run_set_aside_is_no_record_of_its_own(tmp_path):
    from attempt_dist.atomic_files import write_json_atomic
    from attempt_dist.plots.records import collect
    from attempt_dist.training.overwrite import ASIDE

    record = {"schema": 1, "status": "completed", "config": {"model": "t5-tiny", "method": "prompt", "tasks": "rte"},
              "metrics": {"test": {"rte": {"accuracy": 50.0}}}, "params": {}}
    write_json_atomic(tmp_path / "run" / "result.json", record)
    write_json_atomic(tmp_path / "run" / ASIDE / "result.json", record)
    assert len(collect(tmp_path)) == 1


# --- Ctrl-C ------------------------------------------------------------------------------------

# Ctrl-C arrives while step 2's checkpoint is being written: SIGINT to this very process.
# A shell starts background jobs with SIGINT ignored, and children inherit that (Python then
# installs no KeyboardInterrupt handler): a test run from `cmd &` would see no Ctrl-C at all.
# The hook gives the run a terminal's disposition first.
CTRL_C_MID_SAVE = """
import os, signal, torch
signal.signal(signal.SIGINT, signal.default_int_handler)
_save = torch.save
def save(obj, f, *args, **kwargs):
    _save(obj, f, *args, **kwargs)
    if "step2" in str(f):
        os.kill(os.getpid(), signal.SIGINT)
torch.save = save
"""


def test_ctrl_c_ends_a_run_with_one_line_and_130_keeping_the_last_complete_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = launch([*PROMPT, "--max-steps", "3", "--save-every", "1", "--output-dir", str(out)], check=False,
                  timeout=300, env=startup_hook(tmp_path / "hook", CTRL_C_MID_SAVE))
    assert proc.returncode == EXIT_INTERRUPTED, (proc.stdout + proc.stderr)[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "interrupted at step 2" in lines[0] and "step1" in lines[0] \
        and "--resume" in lines[0], proc.stderr[-3000:]
    found, _ = ckpt.find_resumable(out)  # the half-written step2 is passed over
    assert found.tag == "step1" and ckpt.check_tag(ckpt.checkpoint_dir(out), "step1").ok
    assert not (out / "result.json").exists()


# --- a full disk --------------------------------------------------------------------------------

def _full_disk(monkeypatch, folder: Path, fails) -> None:
    """Every non-empty write through Python's open() to a file under `folder` for which
    fails(name) holds raises ENOSPC, as a full disk does (creating an empty file still works)."""
    real_open = io.open

    class FullDisk:
        def __init__(self, handle, name):
            self._handle, self._name = handle, name

        def write(self, data):
            if data:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)
            return 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        path = Path(os.fsdecode(file)) if isinstance(file, (str, bytes, os.PathLike)) else None
        if path is not None and set(mode) & set("wax") and folder in path.absolute().parents and fails(path.name):
            return FullDisk(handle, str(path))
        return handle

    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr("builtins.open", full_open)


@pytest.mark.parametrize("fails", [lambda name: True, lambda name: name.startswith(".config.json")],
                         ids=["from the start", "at config.json"])
def test_a_full_disk_ends_in_one_line(tmp_path, monkeypatch, capsys, fails):
    out = tmp_path / "run"
    _full_disk(monkeypatch, tmp_path, fails)
    code = train_here([*RUN, "--output-dir", str(out)])
    assert code != 0
    (line,) = error_lines(capsys.readouterr().err)
    assert "No space left on device" in line, line
    assert not (out / "result.json").exists()


# --- a torn metrics line ------------------------------------------------------------------------

def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path, capsys):
    from attempt_dist.training.tracking import METRICS_FILENAME, MetricsLog

    rows = [{"kind": "train", "step": 1, "loss": 1.0}, {"kind": "train", "step": 2, "loss": 0.5}]
    path = tmp_path / METRICS_FILENAME
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"kind": "train", "st')  # killed mid-line
    log = MetricsLog(tmp_path, resume_step=2)
    log.close()
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
    err = capsys.readouterr().err
    assert "torn" in err and METRICS_FILENAME in err and "Traceback" not in err
