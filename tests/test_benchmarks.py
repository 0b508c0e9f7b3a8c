"""benchmarks/memory_scaling.py: the planned commands, the sweep it runs, the result collection, and one
real t5-tiny cell through the sweep (seconds; no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import DATA, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import memory_scaling as ms  # noqa: E402

# The paper's 24 GB question, written out by hand: (model, method, --ds-config, batch size, checkpointing).
EXPECTED_DEFAULT = [
    ("t5-3b", "attempt", "auto", "32", False),
    ("t5-3b", "prompt", "auto", "32", False),
    ("t5-3b", "finetune", "auto", "1", False),
    ("t5-3b", "attempt", "ds_configs/zero3_offload.json", "2", False),
    ("t5-large", "attempt", "auto", "32", False),
    ("t5-large", "finetune", "auto", "16", False),
    ("t5-large", "adapter", "auto", "32", False),
    ("t5-3b", "attempt", "ds_configs/zero0.json", "32", True),
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
    for cmd, (model, method, config, batch, ckpt) in zip(commands, EXPECTED_DEFAULT):
        assert cmd[1] == "launch/train.py"
        assert (_flag(cmd, "--model"), _flag(cmd, "--method"), _flag(cmd, "--ds-config"), _flag(cmd, "--batch-size")) \
            == (model, method, config, batch)
        assert ("--activation-checkpointing" in cmd) == ckpt
        assert _flag(cmd, "--gpu-mem-cap") == "24GiB"
        assert _flag(cmd, "--init") == "random"
        assert _flag(cmd, "--max-length") == "216"
        # The lengthened copy of the example data, written under the work dir before the runs.
        assert _flag(cmd, "--data-dir") == "WORK/data"
        # Prompt-mixing methods need the random library; the others must not be given one.
        assert ("--source-prompts" in cmd) == (method == "attempt")
        # Evaluation must not dominate: tiny eval sets, no evaluation before the last step.
        assert int(_flag(cmd, "--eval-every")) > int(_flag(cmd, "--max-steps"))
        assert int(_flag(cmd, "--max-eval-examples")) <= 4
        # No checkpoints (a fine-tuned t5-3b one is 34 GB).
        assert "--no-checkpoints" in cmd and "--save-every" not in cmd


def test_dry_run_overrides_models_cells_steps_cap_and_ranks():
    commands = _dry_run("--models", "t5-tiny", "--cells", "*attempt*", "--steps", "3", "--cap", "none", "--ranks", "2",
                        "--work-dir", "/tmp/w")
    # Two t5-3b and one t5-large attempt cell at batch 32 with --ds-config auto become one once both
    # backbones are t5-tiny; the zero3_offload batch-2 and the checkpointed zero0 cells stay apart.
    assert [(_flag(c, "--ds-config"), _flag(c, "--batch-size"), "--activation-checkpointing" in c) for c in commands] == \
        [("auto", "32", False), ("ds_configs/zero3_offload.json", "2", False), ("ds_configs/zero0.json", "32", True)]
    for cmd in commands:
        assert _flag(cmd, "--model") == "t5-tiny"
        assert _flag(cmd, "--max-steps") == "3"
        assert "--gpu-mem-cap" not in cmd
        assert cmd[1:6] == ["-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_port"]
        assert _flag(cmd, "--data-dir") == "/tmp/w/data"
        assert _flag(cmd, "--output-dir").startswith("/tmp/w/runs/")


def test_explicit_data_dir_is_used_as_is():
    commands = _dry_run("--cells", "t5-large_adapter*", "--data-dir", "examples/data")
    assert [_flag(c, "--data-dir") for c in commands] == ["examples/data"]


def test_lengthened_data_fills_max_length_and_keeps_targets(tmp_path):
    # The shipped boolq inputs are 25 t5-tiny tokens; the benchmark copy must be exactly max_length.
    shipped = ms.data_lengths("boolq", "examples/data", "t5-tiny", 216, 8)
    assert shipped["input_max"] < 216
    out = ms.write_benchmark_data(DATA, tmp_path / "data", "boolq", 216)
    assert sorted(p.name for p in (out / "boolq").iterdir()) == ["train.jsonl", "validation.jsonl"]
    source = [json.loads(line) for line in (REPO / "examples/data/boolq/train.jsonl").read_text().splitlines()]
    written = [json.loads(line) for line in (out / "boolq/train.jsonl").read_text().splitlines()]
    assert len(written) == len(source)
    for old, new in zip(source, written):
        assert {k: v for k, v in new.items() if k != "passage"} == {k: v for k, v in old.items() if k != "passage"}
        assert new["passage"].startswith(old["passage"]) and len(new["passage"].split()) > 216
    for max_length in (216, 64):
        got = ms.data_lengths("boolq", out, "t5-tiny", max_length, 8)
        assert (got["examples"], got["input_min"], got["input_max"]) == (len(source), max_length, max_length)
        # Targets ("True"/"False" and eos) keep their real length.
        assert got["targets_cut"] == 0 and got["target_max"] == shipped["target_max"]
    # The check before the runs accepts it and records what was used.
    settings = ms.Settings(data_dir=str(out), max_length=216)
    settings, data = ms.prepare_data(settings, ["t5-tiny"])
    assert data["lengthened"] and data["train_lengths"]["t5-tiny"]["input_min"] == 216
    assert "exactly 216 tokens" in ms.data_note(data, settings)


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
    auto = ms.Cell("t5-3b", "attempt", "auto", 32)
    done = ms.Cell("t5-large", "attempt", "zero3_offload", 16)
    oom = ms.Cell("t5-3b", "prompt", "zero3_offload", 2)
    crashed = ms.Cell("t5-large", "adapter", "zero2_offload", 16)
    _write(tmp_path / done.name, {
        "schema": 1, "status": "completed", "config": {}, "metrics": {}, "world_size": 1, "deepspeed": {"stage": 3},
        "memory": {"peak_allocated_bytes": 3 * 2**30 + 2**29, "device_peak_bytes": 5 * 2**30, "cap_bytes": 24 * 2**30},
        "throughput": {"train_examples_per_s": 12.345, "steps": 5, "examples": 80},
        "params": {"trainable": 232_000, "total": 737_668_096},
    })
    _write(tmp_path / oom.name, {"schema": 1, "config": {}, "status": "oom", "reason": "t5-3b prompt with batch 2 does not fit under the cap"})
    (tmp_path / crashed.name).mkdir()
    _write(tmp_path / auto.name, {
        "schema": 1, "metrics": {}, "status": "completed", "world_size": 1, "deepspeed": {"stage": 3},
        "memory": {"peak_allocated_bytes": 20 * 2**30, "device_peak_bytes": 21 * 2**30, "cap_bytes": 24 * 2**30},
        "throughput": {"train_examples_per_s": 3.0, "steps": 5},
        "config": {"batch_size": 8, "grad_accum": 4, "activation_checkpointing": True},
        "plan": {"chosen": {"layout": "zero3+opt+param", "peak_bytes": 22 * 2**30,
                            "components": {"cuda_context": 2**29, "weights": 21 * 2**30 + 2**29}}},
    })

    rows = [ms.collect_row(done, tmp_path / done.name, 0), ms.collect_row(oom, tmp_path / oom.name, 3),
            ms.collect_row(crashed, tmp_path / crashed.name, 1), ms.collect_row(auto, tmp_path / auto.name, 0)]

    assert rows[0]["status"] == "completed"
    assert rows[0]["peak_allocated_gib"] == pytest.approx(3.5)
    assert rows[0]["device_peak_gib"] == pytest.approx(5.0)
    assert rows[0]["cap_gib"] == pytest.approx(24.0)
    assert (rows[0]["examples_per_s"], rows[0]["steps"], rows[0]["zero_stage"], rows[0]["trainable_params"]) == \
        (12.345, 5, 3, 232_000)
    assert rows[1]["status"] == "oom" and rows[1]["peak_allocated_gib"] is None
    assert "does not fit" in rows[1]["reason"]
    assert rows[2]["status"] == "failed" and "exit code 1" in rows[2]["reason"]
    # --ds-config auto: the planner's layout and prediction beside the measurement.
    assert (rows[3]["planned_layout"], rows[3]["micro_batch"], rows[3]["grad_accum"], rows[3]["checkpointing"]) == \
        ("zero3+opt+param", 8, 4, True)
    assert rows[3]["predicted_peak_gib"] == pytest.approx(22.0)
    assert rows[3]["predicted_allocator_gib"] == pytest.approx(21.5)
    assert rows[3]["predicted_components_gib"] == {"cuda_context": 0.5, "weights": 21.5}
    assert rows[0]["planned_layout"] is None and rows[0]["predicted_peak_gib"] is None

    # Columns: model, method, config, planned layout, ckpt, ranks, batch, micro, peak allocator, predicted,
    # device peak, predicted device, examples/s, status.
    assert [title for _, title in ms.COLUMNS][:4] == ["model", "method", "config", "planned layout"]
    assert ms.table_rows(rows) == [
        ["t5-large", "attempt", "zero3_offload", "-", "False", "1", "16", "-", "3.50", "-", "5.00", "-", "12.35", "completed"],
        ["t5-3b", "prompt", "zero3_offload", "-", "False", "1", "2", "-", "-", "-", "-", "-", "-", "oom"],
        ["t5-large", "adapter", "zero2_offload", "-", "False", "1", "16", "-", "-", "-", "-", "-", "-", "failed"],
        ["t5-3b", "attempt", "auto", "zero3+opt+param", "True", "1", "32", "8", "20.00", "21.50", "21.00", "22.00",
         "3.00", "completed"],
    ]


def test_report_files_hold_the_table_and_the_command(tmp_path):
    row = ms.collect_row(ms.Cell("t5-tiny", "attempt", "zero0", 4), tmp_path / "missing")
    report = {"name": "memory-scaling", "device": "cpu", "date": "2026-01-01 00:00 UTC",
              "machine": {"description": "2 CPU cores"}, "versions": {"torch": "x"},
              "command": "python benchmarks/memory_scaling.py --models t5-tiny",
              "plan": {"steps": 3, "task": "boolq", "max_length": 216, "cap": None, "data_dir": "/w/data",
                       "lengthened": True}, "rows": [row], "notes": ["Data: /w/data"]}
    json_path, md_path = ms.write_report(report, tmp_path / "out", "memory-scaling-cpu")
    assert json.loads(json_path.read_text())["rows"][0]["status"] == "missing"
    text = md_path.read_text()
    assert "`python benchmarks/memory_scaling.py --models t5-tiny`" in text
    assert "| t5-tiny | attempt | zero0 | - | False | 1 | 4 | - | - | - | - | - | - | missing |" in text
    assert "data /w/data (inputs lengthened to max_length)" in text and "- Data: /w/data" in text


def test_deadline_skips_cells_that_would_start_too_late(tmp_path):
    # The cells run as a sweep: its --deadline (here 0 s) starts none of them.
    cells = [ms.Cell("t5-tiny", "prompt", "zero0", 2), ms.Cell("t5-tiny", "finetune", "zero0", 2)]
    rows = ms.run_cells(cells, ms.Settings(deadline_s=0), tmp_path, log=lambda *_: None)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert "--deadline of 0 s" in rows[0]["reason"]
    assert not list((tmp_path / "runs").glob("cells/*/job.json"))  # nothing was launched
    assert not list((tmp_path / "runs").glob("cells/*/run/result.json"))


def test_sweep_file_passes_every_option_of_the_cell(tmp_path):
    # What the sweep passes to the trainer is what --dry-run prints (paths made absolute), and the
    # executor runs one cell at a time with the cell's ranks, --timeout as `time`, no requeue.
    from attempt_dist.sweep import load_sweep, train_argv

    cells = ms.select_cells(ms.DEFAULT_CELLS, None, None) + [ms.Cell("t5-large", "prompt", "zero2_offload", 4, ranks=2)]
    settings = ms.Settings(data_dir=str(tmp_path / "data"), timeout_s=130, deadline_s=50)
    libraries = {m: tmp_path / "libraries" / m for m in ("t5-3b", "t5-large")}
    raw = ms.sweep_file(cells, settings, libraries, {"t5-3b": "t5-tiny", "t5-large": None}, cuda=False)
    sweep = load_sweep(ms.write_sweep_file(raw, tmp_path))
    assert [c.name for c in sweep.cells] == [ms.sweep_cell_name(c, settings) for c in cells]

    def options(argv):
        out, key = {}, None
        for arg in argv:
            if arg.startswith("--"):
                key = arg
                out[key] = True
            else:
                out[key] = arg
        return out

    for cell, swept in zip(cells, sweep.cells):
        run_dir = ms.sweep_run_dir(tmp_path, cell, settings)
        library = libraries[cell.model] if cell.method in ms.LIBRARY_METHODS else None
        tokenizer = "t5-tiny" if cell.model == "t5-3b" else None
        printed = options(ms.train_command(cell, settings, run_dir, library, tokenizer=tokenizer)[2 if cell.ranks == 1 else 8:])
        if printed["--ds-config"] != "auto":
            printed["--ds-config"] = str((REPO / printed["--ds-config"]).resolve())  # ds_configs/ is a link
        assert options(train_argv(swept, run_dir)) == printed
        assert printed["--tasks"] == "boolq" and "--no-save-attention" in printed and "--no-checkpoints" in printed
        assert (printed.get("--tokenizer"), "--gpu-mem-cap" in printed) == (tokenizer, True)
        ex = swept.executor
        assert (ex.kind, ex.ntasks_per_node, ex.gpus_per_node, ex.time, ex.requeues) == ("local", cell.ranks, 0, 3, 0)
    assert sweep.executor.array_parallelism == 1


def test_one_real_cell_runs_through_the_sweep(tmp_path, capsys):
    # One t5-tiny cell, one step, short inputs: the whole path (data, sweep file, local job, rows).
    work, out = tmp_path / "work", tmp_path / "out"
    code = ms.main(["--models", "t5-tiny", "--cap", "none", "--steps", "1", "--cells", "t5-tiny_prompt_auto_bs32_r1",
                    "--max-length", "32", "--prompt-length", "4", "--work-dir", str(work), "--out", str(out)])
    assert code == 0, capsys.readouterr().out
    (row,) = json.loads((out / "memory-scaling-cpu.json").read_text())["rows"]
    assert (row["status"], row["steps"], row["cell"]) == ("completed", 1, "t5-tiny_prompt_auto_bs32_r1")
    assert row["log"].startswith(str(work / "runs" / "logs"))
    result = json.loads((work / "runs/cells/t5-tiny__prompt_auto_bs32_r1__boolq__s42/run/result.json").read_text())
    config = result["config"]
    assert (config["init"], config["max_length"], config["no_checkpoints"], config["save_attention"],
            config["warmup_steps"], config["data_dir"]) == ("random", 32, True, False, 0, str(work / "data"))
    assert (work / "sweep.yaml").is_file() and (work / "runs" / "sweep.json").is_file()


def test_deadline_option_reaches_the_plan():
    args = ms.build_parser().parse_args(["--deadline", "600", "--cap", "none"])
    settings = ms.settings_from_args(args, Path("/w"))
    assert (settings.deadline_s, settings.cap, settings.data_dir, settings.lengthened) == (600, None, "/w/data", True)
    given = ms.settings_from_args(ms.build_parser().parse_args(["--data-dir", "my/data"]))
    assert (given.data_dir, given.data_source, given.lengthened) == ("my/data", "my/data", False)
