"""benchmarks/memory_scaling.py: the planned commands and the result collection (no runs, no timing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import memory_scaling as ms  # noqa: E402

# The paper's 24 GB question, written out by hand: (model, method, ds_config file, batch size).
EXPECTED_DEFAULT = [
    ("t5-large", "attempt", "ds_configs/zero3_offload.json", "16"),
    ("t5-large", "prompt", "ds_configs/zero3_offload.json", "16"),
    ("t5-3b", "attempt", "ds_configs/zero3_offload.json", "2"),
    ("t5-3b", "prompt", "ds_configs/zero3_offload.json", "2"),
    ("t5-large", "finetune", "ds_configs/zero2_offload.json", "16"),
    ("t5-large", "adapter", "ds_configs/zero2_offload.json", "16"),
]


def _flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def _dry_run(*args: str) -> list[list[str]]:
    out = subprocess.run([sys.executable, "benchmarks/memory_scaling.py", "--dry-run", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import shlex

    return [shlex.split(line) for line in out.stdout.splitlines() if line.strip()]


def test_dry_run_plans_the_24gb_question():
    commands = _dry_run()
    assert len(commands) == len(EXPECTED_DEFAULT)
    for cmd, (model, method, config, batch) in zip(commands, EXPECTED_DEFAULT):
        assert cmd[1] == "launch/train.py"
        assert (_flag(cmd, "--model"), _flag(cmd, "--method"), _flag(cmd, "--ds-config"), _flag(cmd, "--batch-size")) \
            == (model, method, config, batch)
        assert _flag(cmd, "--gpu-mem-cap") == "24GiB"
        assert _flag(cmd, "--init") == "random"
        assert _flag(cmd, "--max-length") == "216"
        # Prompt-mixing methods need the random library; the others must not be given one.
        assert ("--source-prompts" in cmd) == (method == "attempt")
        # Evaluation must not dominate: tiny eval sets, no evaluation before the last step.
        assert int(_flag(cmd, "--eval-every")) > int(_flag(cmd, "--max-steps"))
        assert int(_flag(cmd, "--max-eval-examples")) <= 4


def test_dry_run_overrides_models_cells_steps_cap_and_ranks():
    commands = _dry_run("--models", "t5-tiny", "--cells", "*zero3*", "--steps", "3", "--cap", "none", "--ranks", "2")
    # Four zero3 cells become two once t5-large and t5-3b are both t5-tiny (the batch sizes differ).
    assert [(_flag(c, "--method"), _flag(c, "--batch-size")) for c in commands] == \
        [("attempt", "16"), ("prompt", "16"), ("attempt", "2"), ("prompt", "2")]
    for cmd in commands:
        assert _flag(cmd, "--model") == "t5-tiny"
        assert _flag(cmd, "--max-steps") == "3"
        assert "--gpu-mem-cap" not in cmd
        assert cmd[1:6] == ["-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_port"]
        assert _flag(cmd, "--ds-config") == "ds_configs/zero3_offload.json"


def test_cpu_zero_stages_plans_every_stage_and_rank_count():
    out = subprocess.run([sys.executable, "benchmarks/cpu_zero_stages.py", "--dry-run"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import shlex

    planned = set()
    for line in out.stdout.splitlines():
        cmd = shlex.split(line)
        ranks = int(_flag(cmd, "--num_gpus") or 1)
        planned.add((_flag(cmd, "--model"), _flag(cmd, "--ds-config"), ranks))
        assert _flag(cmd, "--method") == "attempt" and "--gpu-mem-cap" not in cmd
    assert planned == {(m, f"ds_configs/{s}.json", r) for m in ("t5-tiny", "t5-small")
                       for s in ("zero0", "zero2_offload", "zero3_offload") for r in (1, 2)}


def test_unknown_cell_pattern_is_one_line_error():
    out = subprocess.run([sys.executable, "benchmarks/memory_scaling.py", "--dry-run", "--cells", "t5-11b*"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "matches no cell" in out.stderr and "Traceback" not in out.stderr


def _write(path: Path, payload: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / ("result.json" if payload.get("status") == "completed" else "failure.json")).write_text(json.dumps(payload))


def test_collect_rows_from_result_and_oom_folders(tmp_path):
    done = ms.Cell("t5-large", "attempt", "zero3_offload", 16)
    oom = ms.Cell("t5-3b", "prompt", "zero3_offload", 2)
    crashed = ms.Cell("t5-large", "adapter", "zero2_offload", 16)
    _write(tmp_path / done.name, {
        "status": "completed", "world_size": 1, "deepspeed": {"stage": 3},
        "memory": {"peak_allocated_bytes": 3 * 2**30 + 2**29, "device_peak_bytes": 5 * 2**30, "cap_bytes": 24 * 2**30},
        "throughput": {"train_examples_per_s": 12.345, "steps": 5, "examples": 80},
        "params": {"trainable": 232_000, "total": 737_668_096},
    })
    _write(tmp_path / oom.name, {"status": "oom", "reason": "t5-3b prompt with batch 2 does not fit under the cap"})
    (tmp_path / crashed.name).mkdir()

    rows = [ms.collect_row(done, tmp_path / done.name, 0), ms.collect_row(oom, tmp_path / oom.name, 3),
            ms.collect_row(crashed, tmp_path / crashed.name, 1)]

    assert rows[0]["status"] == "completed"
    assert rows[0]["peak_allocated_gib"] == pytest.approx(3.5)
    assert rows[0]["device_peak_gib"] == pytest.approx(5.0)
    assert rows[0]["cap_gib"] == pytest.approx(24.0)
    assert (rows[0]["examples_per_s"], rows[0]["steps"], rows[0]["zero_stage"], rows[0]["trainable_params"]) == \
        (12.345, 5, 3, 232_000)
    assert rows[1]["status"] == "oom" and rows[1]["peak_allocated_gib"] is None
    assert "does not fit" in rows[1]["reason"]
    assert rows[2]["status"] == "failed" and "exit code 1" in rows[2]["reason"]

    # Columns: model, method, config, ranks, batch, peak allocator, device peak, examples/s, status.
    assert ms.table_rows(rows) == [
        ["t5-large", "attempt", "zero3_offload", "1", "16", "3.50", "5.00", "12.35", "completed"],
        ["t5-3b", "prompt", "zero3_offload", "1", "2", "-", "-", "-", "oom"],
        ["t5-large", "adapter", "zero2_offload", "1", "16", "-", "-", "-", "failed"],
    ]


def test_report_files_hold_the_table_and_the_command(tmp_path):
    row = ms.collect_row(ms.Cell("t5-tiny", "attempt", "zero0", 4), tmp_path / "missing")
    report = {"name": "memory-scaling", "device": "cpu", "date": "2026-01-01 00:00 UTC",
              "machine": {"description": "2 CPU cores"}, "versions": {"torch": "x"},
              "command": "python benchmarks/memory_scaling.py --models t5-tiny",
              "plan": {"steps": 3, "task": "boolq", "max_length": 216, "cap": None}, "rows": [row], "notes": []}
    json_path, md_path = ms.write_report(report, tmp_path / "out", "memory-scaling-cpu")
    assert json.loads(json_path.read_text())["rows"][0]["status"] == "missing"
    text = md_path.read_text()
    assert "`python benchmarks/memory_scaling.py --models t5-tiny`" in text
    assert "| t5-tiny | attempt | zero0 | 1 | 4 | - | - | - | missing |" in text
