"""--resume continues the same run or says why not: a folder without a checkpoint (unless
`--resume auto`), other training data, checkpoint files whose bytes changed at the same size.

t5-tiny, 4 steps: one uninterrupted run is the reference; a copy of it without result.json
stands for a run killed right after its step-4 checkpoint (a resume from step 2 retrains steps
3-4 and must end exactly where the reference ended). Refusals happen before DeepSpeed starts, so
they run in-process (recipe.main); a run that trains is a subprocess, as DeepSpeed keeps state
of an engine's process group that a second engine in the same process cannot use.
"""

import json
import re
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from attempt_dist.training import checkpoint as ckpt
from attempt_dist.training.recipe import main
from tests.train_helpers import DATA, TINY, launch, result, trainable

pytestmark = pytest.mark.slow
RUN = [*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "4", "--save-every", "2"]
MODEL_STATES = "mp_rank_00_model_states.pt"


def refused(capsys, *args) -> str:
    """Run in-process a resume that must be refused: its one error line."""
    assert main([*RUN, *map(str, args)]) == 2
    return one_error_line(capsys.readouterr().err)


def one_error_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """The uninterrupted reference run (checkpoints step2, step4, best), started by `--resume
    auto` in a new folder; its stdout."""
    out = tmp_path_factory.mktemp("straight") / "run"
    return out, launch([*RUN, "--output-dir", str(out), "--resume", "auto"]).stdout


@pytest.fixture
def straight(started):
    return started[0]


@pytest.fixture
def killed(straight, tmp_path):
    """The reference run as a kill right after its step-4 checkpoint leaves it: no result.json."""
    out = tmp_path / "killed"
    shutil.copytree(straight, out)
    (out / "result.json").unlink()
    return out


def flip_bytes(path: Path) -> None:
    """Damage a checkpoint file the way a bad disk or a stray write does: the same size, and it
    still loads, only some weights are off (the low byte of the first floats of each tensor)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:  # torch.save's format: a zip of uncompressed storages
        storages = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 16]
    assert storages
    for info in storages:
        name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len
        for i in range(start, start + 16, 4):
            data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    line = refused(capsys, "--output-dir", out, "--resume")
    assert f"no checkpoint in {out}; start without --resume or use --resume auto" in line
    assert not (out / "result.json").exists() and not ckpt.has_checkpoints(out)


def test_resume_auto_starts_a_run_that_has_no_checkpoint(started):
    out, stdout = started
    assert f"--resume auto: no checkpoint in {out} yet; starting the run" in stdout
    assert result(out)["steps"] == 4 and result(out)["config"]["resume"] == "auto"


def test_resume_onto_other_training_data_is_refused_naming_both_fingerprints(killed, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(DATA / "rte", data / "rte")
    rows = [json.loads(line) for line in (data / "rte" / "train.jsonl").read_text().splitlines()]
    (data / "rte" / "train.jsonl").write_text("".join(json.dumps({**r, "label": 1 - r["label"]}) + "\n" for r in rows))
    kept = [killed / "config.json", *sorted(ckpt.checkpoint_dir(killed).rglob("*"))]
    before = {p: p.read_bytes() for p in kept if p.is_file()}
    line = refused(capsys, "--output-dir", killed, "--resume", "--data-dir", data)
    assert "training data" in line and "--data-dir" in line, line
    saved = json.loads((ckpt.checkpoint_dir(killed) / "step4" / ckpt.MARKER).read_text())["data"]["rte"]
    found = re.search(r"rte: ([0-9a-f]{12,}).* -> ([0-9a-f]{12,})", line)
    assert found and saved.startswith(found[1]) and not saved.startswith(found[2]), line
    assert {p: p.read_bytes() for p in kept if p.is_file()} == before  # the checkpoints and config untouched


def test_flipped_bytes_fall_back_to_the_previous_tag_and_end_as_the_uninterrupted_run(straight, killed, tmp_path):
    flip_bytes(ckpt.checkpoint_dir(killed) / "step4" / MODEL_STATES)
    same_data = tmp_path / "same-data"  # the same bytes elsewhere: the same data
    shutil.copytree(DATA / "rte", same_data / "rte")
    out = launch([*RUN, "--output-dir", str(killed), "--resume", "--data-dir", str(same_data)]).stdout
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "step4" in warnings[0] and MODEL_STATES in warnings[0], out
    assert "sha256" in warnings[0] and "resuming from step2" in warnings[0]
    assert "resumed from checkpoint step2" in out
    assert result(killed)["train_loss"] == result(straight)["train_loss"]
    a, b = trainable(straight), trainable(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_tag_damaged_is_one_error_line(killed, capsys):
    for tag in ("step2", "step4"):
        flip_bytes(ckpt.checkpoint_dir(killed) / tag / MODEL_STATES)
    for mode in (["--resume"], ["--resume", "auto"]):  # auto never starts afresh over damaged checkpoints
        line = refused(capsys, "--output-dir", killed, *mode)
        for fragment in ("no complete checkpoint", "step4 is damaged", "step2 is damaged", MODEL_STATES):
            assert fragment in line, line
    assert not (killed / "result.json").exists()


def test_a_resumed_runs_config_json_reproduces_the_run_not_the_resume(tmp_path):
    from attempt_dist.training.config import build_parser, config_from_args, parse_train_args

    (tmp_path / "config.json").write_text(json.dumps({"train": {"method": "prompt", "resume": "yes"}}))
    (tmp_path / "old.json").write_text(json.dumps({"train": {"method": "prompt", "resume": True}}))  # a bool, once
    (tmp_path / "mine.yaml").write_text("method: prompt\nresume: true\n")
    parsed = {name: config_from_args(parse_train_args(build_parser(), ["--config", str(tmp_path / name)]), check=False)
              for name in ("config.json", "old.json", "mine.yaml")}
    assert {name: cfg.resume for name, cfg in parsed.items()} == {"config.json": "no", "old.json": "no",
                                                                  "mine.yaml": "yes"}
