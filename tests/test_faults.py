"""Fault injection: a second run on a held folder, --overwrite with bad input, --resume with a
changed run, damaged checkpoints of each kind, a full disk mid-checkpoint, a stopped rank.

Each fault must give one clear line, a non-zero exit, and leave nothing lost or mixed. The
exact-resume tests (kill -9, then --resume equals an uninterrupted run) live beside the recipe
tests; here a resume after a fallback is checked against the losses the killed run recorded.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from attempt_dist.training import checkpoint as ckpt
from attempt_dist.distributed.env import free_port
from attempt_dist.errors import UserError
from attempt_dist.training.runlock import LOCK_FILENAME, FolderLock
from tests.train_helpers import DATA, REPO, TINY, TRAIN, launch, make_library, result, startup_hook, trainable

pytestmark = pytest.mark.slow
PROMPT = [*TINY, "--method", "prompt", "--tasks", "rte"]
# Interrupted run: 6 steps planned, checkpoints every 2, killed right after step 4's.
INTERRUPTED = [*PROMPT, "--max-steps", "6", "--save-every", "2"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file's hash, but the lock: a killed run leaves its lock file, the next run takes it over."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILENAME}


def one_line_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.stdout + proc.stderr)[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupted") / "run"
    killed = launch([*INTERRUPTED, "--output-dir", str(out)], env={"ATTEMPT_DIST_CRASH_AFTER_STEP": "4"}, check=False)
    assert killed.returncode != 0 and not (out / "result.json").exists()
    return out


@pytest.fixture
def run_copy(interrupted, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    return out


# --- one owner per folder --------------------------------------------------------------------

def test_folder_lock_names_its_owner_and_takes_over_a_dead_ones(tmp_path, capsys):
    folder = tmp_path / "run"
    with FolderLock(folder, "training run"):
        owner = json.loads((folder / LOCK_FILENAME).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(UserError, match=f"in use by another training run: pid {os.getpid()} on host "
                                            f"{socket.gethostname()}"):
            FolderLock(folder, "training run").acquire()
    assert not (folder / LOCK_FILENAME).exists()  # released: the file goes with the lock
    # A lock file whose owner died (the kernel dropped its flock) is taken over, with a note.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / LOCK_FILENAME).write_text(json.dumps({"pid": int(dead.stdout), "host": "node7", "started": 0}))
    lock = FolderLock(folder).acquire()
    try:
        assert lock.took_over["pid"] == int(dead.stdout)
        assert f"locked by pid {int(dead.stdout)} on host node7" in capsys.readouterr().err
        assert json.loads((folder / LOCK_FILENAME).read_text())["pid"] == os.getpid()
    finally:
        lock.release()


@pytest.mark.parametrize("launcher, ranks", [("python", 1), ("deepspeed", 2)])
def test_a_run_on_a_held_folder_exits_2_naming_the_owner_and_writes_nothing(tmp_path, launcher, ranks):
    """Rank 0 holds the lock for the run; with 2 ranks both learn its verdict and exit 2 (no hang)."""
    out = tmp_path / "run"
    with FolderLock(out, "training run"):
        proc = launch([*PROMPT, "--max-steps", "1", "--output-dir", str(out)], launcher=launcher, ranks=ranks,
                      check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    # Every rank that prints says the same; the launcher stops the other ranks as soon as one
    # exits, so on a loaded machine rank 1 may be gone before its line (exit 2, not a hang, is
    # what shows it learnt the verdict: a rank left waiting would end in the dist timeout).
    assert 1 <= len(errors) <= ranks and len(set(errors)) == 1, errors
    assert f"{out} is in use by another training run: pid {os.getpid()} on host {socket.gethostname()}" in errors[0]
    assert list(out.iterdir()) == []


def test_a_sweep_launch_on_a_held_sweep_folder_is_refused(tmp_path):
    from attempt_dist.sweep import parse_sweep, run_sweep

    sweep = parse_sweep({"name": "t", "grid": [{"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["rte"],
                                                "seeds": [1]}], "executor": {"kind": "debug"}})
    run = tmp_path / "sweep"
    with FolderLock(run, "sweep launch"):
        with pytest.raises(UserError, match=f"in use by another sweep launch: pid {os.getpid()}"):
            run_sweep(sweep, run)
    assert [p.name for p in run.iterdir()] == []  # nothing planned, nothing written


# --- --overwrite checks everything before it removes anything ----------------------------------

@pytest.fixture(scope="module")
def finished_attempt(tmp_path_factory):
    base = tmp_path_factory.mktemp("finished")
    lib = make_library(base / "lib")
    out = base / "run"
    launch([*TINY, "--method", "attempt", "--tasks", "rte", "--source-prompts", str(lib), "--max-steps", "2",
            "--output-dir", str(out)])
    assert (out / "attention").is_dir() and (out / "result.json").exists()
    return out, lib


def _bad_data(tmp: Path) -> list[str]:
    data = tmp / "data"
    shutil.copytree(DATA / "rte", data / "rte")
    lines = (data / "rte" / "train.jsonl").read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"a", b"\xe9", 1)  # a Latin-1 byte in line 3
    (data / "rte" / "train.jsonl").write_bytes(b"\n".join(lines))
    return ["--data-dir", str(data)]


def _bad_library(tmp: Path) -> list[str]:
    lib = make_library(tmp / "badlib")
    (lib / "library.json").write_text('{"prompts": {"mnli": ')
    return ["--source-prompts", str(lib)]


def _truncated_prior(tmp: Path) -> list[str]:
    prior = tmp / "prior.pt"
    torch.save({"gate": {"w": torch.zeros(64, 64)}, "meta": {"backbone": "t5-tiny"}}, prior)
    prior.write_bytes(prior.read_bytes()[:3000])
    return ["--prior", str(prior)]


@pytest.mark.parametrize("bad, message", [
    (lambda tmp: ["--data-dir", str(tmp / "no-such-data")], "rte"),
    (_bad_data, "train.jsonl:3: not UTF-8 text (byte 0xe9"),
    (_bad_library, "library.json is not a prompt-library index"),
    (_truncated_prior, "prior.pt is not an attention prior"),
    (lambda tmp: ["--ds-config", str(tmp / "missing.json")], "missing.json"),
], ids=["data-dir typo", "non-utf8 data", "library.json not json", "truncated prior", "missing ds config"])
def test_overwrite_with_bad_input_leaves_the_finished_run_untouched(finished_attempt, tmp_path, bad, message):
    out, lib = finished_attempt
    before = snapshot(out)
    args = [*TINY, "--method", "attempt", "--tasks", "rte", "--source-prompts", str(lib), "--max-steps", "2",
            "--output-dir", str(out), "--overwrite", *bad(tmp_path)]
    proc = launch(args, check=False)
    one_line_error(proc, 2, message)
    assert snapshot(out) == before


def test_overwrite_leaves_nothing_of_the_old_run(finished_attempt, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_attempt[0], out)
    launch([*PROMPT, "--max-steps", "2", "--output-dir", str(out), "--overwrite"])
    assert not (out / "attention").exists()  # the attempt run's attention files went with it
    assert json.loads((out / "config.json").read_text())["train"]["method"] == "prompt"
    assert result(out)["config"]["method"] == "prompt" and set(trainable(out)) == {"prompt.weight"}
    log = (out / "logs" / "rank0.log").read_text()
    assert "setup done: prompt" in log and "setup done: attempt" not in log
    marker = json.loads((out / "checkpoints" / "best" / ckpt.MARKER).read_text())
    assert marker["config"]["method"] == "prompt"


# --- --resume continues the same run -----------------------------------------------------------

@pytest.mark.parametrize("change, listed", [
    (["--lr", "0.01"], "--lr 0.3 -> 0.01"),
    (["--tasks", "cb"], "--tasks ['rte'] -> ['cb']"),
    (["--method", "bitfit"], "--method 'prompt' -> 'bitfit'"),
    (["--seed", "7", "--batch-size", "4"], "--batch-size 2 -> 4; --seed 42 -> 7"),
])
def test_resume_refuses_a_changed_run_listing_the_fields(run_copy, change, listed):
    before = snapshot(run_copy)
    # argparse keeps an option's last value: `change` overrides the interrupted run's options.
    proc = launch([*INTERRUPTED, *change, "--output-dir", str(run_copy), "--resume"], check=False)
    one_line_error(proc, 2, "--resume continues", "step4", listed)
    assert snapshot(run_copy) == before


def test_resume_may_split_the_same_batch_into_smaller_micro_batches(run_copy):
    """The sweep's out-of-memory re-plan: half the micro-batch, twice the accumulation, the same
    examples per optimizer step. DeepSpeed loads the checkpoint, the data continues at the next example."""
    proc = launch([*INTERRUPTED, "--batch-size", "1", "--grad-accum", "2", "--output-dir", str(run_copy), "--resume"])
    assert "resumed from checkpoint step4 (step 4)" in proc.stdout
    rec = result(run_copy)
    assert rec["steps"] == 6 and (rec["config"]["batch_size"], rec["config"]["grad_accum"]) == (1, 2)


def test_resume_comparison_covers_every_field_but_the_listed_ones():
    from attempt_dist.training.resume_config import MAY_CHANGE_ON_RESUME, differences
    from attempt_dist.training.config import TrainConfig

    saved = TrainConfig(method="prompt", max_steps=4).to_dict()
    fields = set(saved)
    assert MAY_CHANGE_ON_RESUME <= fields  # every name listed is a real option
    for name in fields:
        changed = {**saved, name: ("changed", saved[name])}
        assert bool(differences(saved, changed)) == (name not in MAY_CHANGE_ON_RESUME), name
    # A field only one side has (an option added or renamed since the checkpoint) is not compared.
    assert differences({**saved, "old_option": 1}, saved) == []


def test_resume_with_more_steps_trains_to_them_and_records_them(run_copy):
    launch([*PROMPT, "--max-steps", "8", "--save-every", "2", "--output-dir", str(run_copy), "--resume"])
    rec = result(run_copy)
    assert rec["steps"] == 8 and len(rec["train_loss"]) == 8 and rec["config"]["max_steps"] == 8
    assert json.loads((run_copy / "config.json").read_text())["train"]["max_steps"] == 8


def test_resume_behind_the_checkpoint_is_refused(run_copy):
    proc = launch([*PROMPT, "--max-steps", "3", "--save-every", "2", "--output-dir", str(run_copy), "--resume"],
                  check=False)
    one_line_error(proc, 2, "at step 4, past this run's 3 steps")


# --- damaged checkpoints -----------------------------------------------------------------------

def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "empty latest": (lambda root: (root / "latest").write_text(""), "step4", "latest is empty"),
    "dangling latest": (lambda root: (root / "latest").write_text("step9"), "step4", "names step9, which does not exist"),
    "truncated model states": (lambda root: _truncate(root / "step4" / "mp_rank_00_model_states.pt"), "step2",
                               "step4 is damaged: mp_rank_00_model_states.pt is truncated"),
    "missing rank state": (lambda root: (root / "step4" / "rank0_state.pt").unlink(), "step2",
                           "step4 is damaged: rank0_state.pt is missing"),
    "killed mid-save": (lambda root: (root / "step4" / ckpt.MARKER).unlink(), "step2",
                        "step4 is damaged: it has no complete.json"),
    "unreadable marker": (lambda root: (root / "step4" / ckpt.MARKER).write_text("{"), "step2",
                          "step4 is damaged: its complete.json is unreadable"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_checkpoint_is_named_and_the_newest_complete_one_found(run_copy, kind):
    damage, expected, note = DAMAGE[kind]
    root = ckpt.checkpoint_dir(run_copy)
    assert ckpt.find_resumable(run_copy) == (ckpt.check_tag(root, "step4"), [])
    damage(root)
    found, notes = ckpt.find_resumable(run_copy)
    assert found.tag == expected and found.marker["step"] == int(expected[4:])
    assert len(notes) == 1 and note in notes[0]


def test_resume_falls_back_past_a_truncated_tag_and_trains_the_same_steps(run_copy):
    root = ckpt.checkpoint_dir(run_copy)
    killed_losses = torch.load(root / "step4" / "mp_rank_00_model_states.pt", weights_only=False)["recipe"]["losses"]
    _truncate(root / "step4" / "mp_rank_00_model_states.pt")
    proc = launch([*INTERRUPTED, "--output-dir", str(run_copy), "--resume"])
    assert "step4 is damaged: mp_rank_00_model_states.pt is truncated" in proc.stdout
    assert "resuming from step2 (step 2) instead" in proc.stdout and "resumed from checkpoint step2" in proc.stdout
    losses = result(run_copy)["train_loss"]
    assert len(losses) == 6 and losses[:4] == killed_losses  # steps 3-4 retrained exactly as before


def test_every_tag_damaged_is_refused_and_empty_latest_never_restarts_silently(run_copy):
    root = ckpt.checkpoint_dir(run_copy)
    (root / "latest").write_text("")
    plain = launch([*INTERRUPTED, "--output-dir", str(run_copy)], check=False)
    one_line_error(plain, 2, "holds checkpoints of an unfinished run; pass --resume")
    for tag in ("step2", "step4"):
        (root / tag / ckpt.MARKER).unlink()
    proc = launch([*INTERRUPTED, "--output-dir", str(run_copy), "--resume"], check=False)
    one_line_error(proc, 2, "no complete checkpoint", "step4 is damaged", "step2 is damaged", "--overwrite")


FULL_DISK = """
import errno, torch
_save = torch.save
def save(obj, f, *args, **kwargs):
    if str(f).endswith("step4/mp_rank_00_model_states.pt"):
        open(f, "wb").write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")
    return _save(obj, f, *args, **kwargs)
torch.save = save
"""


def test_full_disk_mid_checkpoint_keeps_the_previous_one_and_resumes(tmp_path):
    out = tmp_path / "run"
    proc = launch([*INTERRUPTED, "--output-dir", str(out)], check=False, env=startup_hook(tmp_path / "hook", FULL_DISK))
    one_line_error(proc, 2, "writing checkpoint", "step4 failed (OSError: [Errno 28] No space left on device)",
                   "step2 is kept", "--resume")
    root = ckpt.checkpoint_dir(out)
    assert not (root / "step4").exists() and ckpt.latest_tag(out) == "step2" and ckpt.check_tag(root, "step2").ok
    assert not (out / "result.json").exists()
    launch([*INTERRUPTED, "--output-dir", str(out), "--resume"])
    assert result(out)["steps"] == 6


# --- a stopped rank ----------------------------------------------------------------------------

def test_a_stopped_rank_ends_the_others_within_the_timeout(tmp_path):
    """Rank 1 stops itself (SIGSTOP) after step 2's checkpoint; rank 0 gives up after
    --dist-timeout and exits 5; rank 1, continued, finds rank 0 gone and exits too."""
    out = tmp_path / "run"
    args = [sys.executable, str(TRAIN), *INTERRUPTED, "--dist-timeout", "5", "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
           "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "ATTEMPT_DIST_STOP_RANK_AFTER_STEP": "1:2"}
    ranks = [subprocess.Popen(args, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in (0, 1)]
    try:
        _, err0 = ranks[0].communicate(timeout=120)
        assert ranks[0].returncode == 5, err0[-3000:]
        assert "rank 0 lost another rank" in err0 and "--dist-timeout 5 s" in err0 and "Traceback" not in err0
        stopped = time.monotonic()
        ranks[1].send_signal(signal.SIGCONT)
        _, err1 = ranks[1].communicate(timeout=60)
        assert ranks[1].returncode == 5 and time.monotonic() - stopped < 30, err1[-3000:]
    finally:
        for proc in ranks:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reason = json.loads((out / "failure.json").read_text())["reason"]
    assert "lost another rank" in reason and "--resume" in reason
    assert ckpt.find_resumable(out)[0].tag == "step2"


# --- user mistakes that used to be tracebacks ---------------------------------------------------

def test_zero_sampling_temperature_is_one_line(tmp_path, capsys):
    from attempt_dist.training.recipe import main

    out = tmp_path / "run"
    assert main([*PROMPT, "--temperature-sampling", "0", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --temperature-sampling must be positive") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_learning_rate_past_float32_is_a_divergence_not_a_traceback(tmp_path):
    out = tmp_path / "run"
    proc = launch([*PROMPT, "--max-steps", "4", "--save-every", "1", "--lr", "1e38", "--output-dir", str(out)],
                  check=False)
    one_line_error(proc, 4, "the update overflowed at step 1", "lower --lr")
    assert json.loads((out / "failure.json").read_text())["status"] == "failed"


# --- checkpoints hold only what training changes ------------------------------------------------

def test_prompt_tuning_tag_of_t5_small_holds_only_the_prompt(tmp_path):
    """t5-small's frozen embedding is tied three ways (encoder, decoder, lm_head): none of its
    names may reach the checkpoint (63 MB a tag before), only the 10 x 512 prompt and its state."""
    out = tmp_path / "run"
    launch(["--model", "t5-small", "--init", "random", "--tokenizer", "t5-tiny",
            "--data-dir", str(DATA), "--method", "prompt", "--tasks", "rte", "--prompt-length", "10", "--batch-size", "2", "--max-steps", "1",
            "--max-eval-examples", "1", "--max-target-length", "2", "--max-length", "32", "--output-dir", str(out)])
    tag = ckpt.checkpoint_dir(out) / "step1"
    size = sum(p.stat().st_size for p in tag.iterdir())
    assert size < 2 * 2**20, size
    states = torch.load(tag / "mp_rank_00_model_states.pt", weights_only=False)
    assert set(states["module"]) == {"prompt.weight"} and states["module"]["prompt.weight"].numel() == 5120
    assert result(out)["params"]["trainable"] == 5120
