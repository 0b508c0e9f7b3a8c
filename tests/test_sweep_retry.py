"""Retry by cause: a sweep requeues a cell whose rank was lost (and, on SLURM, one preempted, timed
out or on a failed node), re-plans one that ran out of memory with a smaller layout, and gives up
at once on a diverged run or bad input; every decision is in the cell's retries.json and in
`sweep status` (table and --json). Fake trainers (test_sweep_fakes.py), no SLURM needed."""

import json

import pytest

from attempt_dist import cli
from attempt_dist.atomic_files import read_json
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from attempt_dist.sweep.plan import plan_sweep
from attempt_dist.sweep.retry import cause_of, decide, smaller_layout
from attempt_dist.sweep.state import CellState
from test_sweep_fakes import FAKES, read_log, fake_env  # noqa: F401 (fake_env: a fixture)

OK, LOST, BIG, DIVERGED, REFUSED = (f"t5-tiny__{m}__boolq__s1" for m in
                                    ("prompt", "stalls-once", "big-batch", "diverges", "refused"))


def _sweep(kind, max_retries=2):
    return parse_sweep({
        **FAKES, "name": "faults",
        "grid": [{"models": ["t5-tiny"], "methods": ["prompt", "stalls-once", "diverges", "refused"],
                  "tasks": ["boolq"], "seeds": [1]},
                 {"models": ["t5-tiny"], "methods": ["big-batch"], "tasks": ["boolq"], "seeds": [1],
                  "train": {"batch_size": 16}}],
        "executor": {"kind": kind, "time": 5, "max_retries": max_retries},
    })


def _calls(log, method):
    return [c for c in read_log(log) if c["kind"] == "train" and c["method"] == method]


@pytest.mark.parametrize("kind", ["debug", "local"])
def test_each_cause_gets_its_retry_and_status_shows_them(kind, tmp_path, fake_env, capsys, monkeypatch):
    run = tmp_path / "run"
    assert run_sweep(_sweep(kind), run) == 1  # the diverged and the refused cell are not done
    states = {s.name: s for s in collect_states(run)}
    assert {n: s.status for n, s in states.items()} == {OK: "done", LOST: "done", BIG: "done",
                                                        DIVERGED: "failed", REFUSED: "failed"}
    # A lost rank: run again once, resuming from the checkpoint it left.
    assert [c["resume"] for c in _calls(fake_env, "stalls-once")] == [None, "auto"]
    assert [(e["cause"], e["action"], e["exit_code"]) for e in states[LOST].retries] == [("rank lost", "requeue", 5)]
    # Out of memory: micro-batch halved twice, accumulation doubled, the effective batch kept.
    big = _calls(fake_env, "big-batch")
    assert [(c["batch_size"], c["grad_accum"]) for c in big] == [("16", None), ("8", "2"), ("4", "4")]
    assert [(e["cause"], e["action"], e["layout"]["batch_size"], e["layout"]["grad_accum"])
            for e in states[BIG].retries] == [("out of memory", "re-plan", 8, 2), ("out of memory", "re-plan", 4, 4)]
    assert read_json(run / "cells" / BIG / "cell.json")["train"]["batch_size"] == 4  # what last ran
    # Diverged and bad input: one run each, the reason kept and the give-up recorded.
    assert len(_calls(fake_env, "diverges")) == 1 and len(_calls(fake_env, "refused")) == 1
    assert states[DIVERGED].detail.startswith("loss diverged (nan) at step 3")
    assert [(e["cause"], e["action"]) for e in states[DIVERGED].retries] == [("diverged", "give up")]
    assert [(e["cause"], e["action"]) for e in states[REFUSED].retries] == [("bad input", "give up")]
    assert states[OK].retries == []
    out = capsys.readouterr().out
    assert f"retrying {LOST}: rank lost -> requeue" in out
    assert f"retrying {BIG}: out of memory -> re-plan (micro-batch 16 x 1 -> 8 x 2)" in out

    assert cli.main(["sweep", "status", str(run), "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["counts"] == {"done": 3, "running": 0, "failed": 2, "oom": 0, "pending": 0}
    by_name = {c["name"]: c for c in shown["cells"]}
    assert [e["action"] for e in by_name[BIG]["retries"]] == ["re-plan", "re-plan"]
    assert by_name[DIVERGED]["retries"][0]["exit_code"] == 4
    monkeypatch.setenv("COLUMNS", "400")  # the table's columns unfolded
    assert cli.main(["sweep", "status", str(run)]) == 1
    table = capsys.readouterr().out
    assert "rank lost -> requeue" in table and "diverged -> give up" in table


def test_retries_stop_at_max_retries_and_a_relaunch_keeps_the_replanned_layout(tmp_path, fake_env):
    run = tmp_path / "run"
    sweep = parse_sweep({**FAKES, "grid": {"models": ["t5-huge"], "methods": ["prompt"], "tasks": ["boolq"]},
                         "train": {"batch_size": 8}, "executor": {"kind": "debug", "max_retries": 1}})
    assert run_sweep(sweep, run) == 1  # t5-huge never fits
    (state,) = collect_states(run)
    assert state.status == "oom"
    assert [(e["action"], e["note"]) for e in state.retries] == [
        ("re-plan", "micro-batch 8 x 1 -> 4 x 2"), ("give up", "max_retries 1 reached")]
    assert len(_calls(fake_env, "prompt")) == 2
    (cell,) = plan_sweep(sweep, run, retry_oom=True).cells
    assert (cell.train["batch_size"], cell.train["grad_accum"]) == (4, 2)


def test_no_retries_with_max_retries_zero(tmp_path, fake_env):
    assert run_sweep(_sweep("debug", max_retries=0), tmp_path / "run") == 1
    states = {s.name: s.status for s in collect_states(tmp_path / "run")}
    assert states[LOST] == "failed" and states[BIG] == "oom"
    assert len(_calls(fake_env, "stalls-once")) == 1 and len(_calls(fake_env, "big-batch")) == 1


@pytest.mark.parametrize("detail,cause", [
    ("slurm job 7 ended PREEMPTED: slurmstepd: error: *** JOB 7 CANCELLED DUE TO PREEMPTION ***", "preempted"),
    ("slurm job 7 ended TIMEOUT: DUE TO TIME LIMIT", "time limit"),
    ("slurm job 7 ended NODE_FAIL: job ended without result.json or failure.json", "node failure"),
    ("slurm job 7 ended CANCELLED: CANCELLED AT 12:00", "failed"),
])
def test_slurm_end_states_are_causes(tmp_path, detail, cause):
    state = CellState("c", "failed", detail, "7")
    assert cause_of(tmp_path, state) == (cause, None)
    cell = _sweep("debug").cells[0]
    assert decide(cell, cause, None, retried=0).action == ("give up" if cause == "failed" else "requeue")
    assert decide(cell, cause, None, retried=2).action == "give up"


def test_the_out_of_memory_ladder():
    train = {"batch_size": 4, "ds_config": "zero2_offload"}
    rungs = []
    while True:
        train, note = smaller_layout(train)
        if train is None:
            break
        rungs.append(note)
    assert rungs == ["micro-batch 4 x 1 -> 2 x 2", "micro-batch 2 x 2 -> 1 x 4", "activation checkpointing",
                     "offload: zero2_offload -> zero3_offload"]
    assert note.startswith("nothing fits: micro-batch 1")
    # An odd micro-batch is not halved (the effective batch would change).
    assert smaller_layout({"batch_size": 3})[1] == "activation checkpointing"
    # The planner laid out an auto cell: asked again with checkpointing, then nothing is left.
    auto, note = smaller_layout({"ds_config": "auto", "batch_size": 32})
    assert auto == {"ds_config": "auto", "batch_size": 32, "activation_checkpointing": True}
    assert smaller_layout(auto)[0] is None


def test_a_relaunch_retries_only_what_it_ran_not_the_last_launchs_failures(tmp_path, fake_env):
    run = tmp_path / "run"
    assert run_sweep(_sweep("debug", max_retries=0), run) == 1
    assert len(_calls(fake_env, "stalls-once")) == 1
    # Relaunched with retries: cells wait their turn (one job at a time) while the previous
    # launch's failure.json still names them; only the end of their new run is decided on.
    assert run_sweep(_sweep("debug", max_retries=2), run) == 1
    states = {s.name: s for s in collect_states(run)}
    assert states[LOST].status == "done" and [c["resume"] for c in _calls(fake_env, "stalls-once")] == [None, "auto"]
    assert [e["action"] for e in states[LOST].retries] == ["give up"]  # launch 1; launch 2 resumed and finished
    # One decision per run, each about its own job: none about launch 1's job while the cell waited.
    first, second = states[DIVERGED].retries
    assert (first["cause"], second["cause"]) == ("diverged", "diverged")
    assert first["job_id"] != second["job_id"] == read_json(run / "cells" / DIVERGED / "job.json")["job_id"]
    assert len(_calls(fake_env, "diverges")) == 2


def test_a_replan_to_another_zero_layout_starts_afresh_with_its_checkpoints_kept_aside(tmp_path):
    from attempt_dist.sweep.retry import Retrier
    from attempt_dist.sweep.state import read_history

    def cell_with(train):
        return parse_sweep({**FAKES, "grid": {"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq"]},
                            "train": train, "executor": {"kind": "debug"}}).cells[0]

    def oom_after_a_checkpoint(cell):
        checkpoints = tmp_path / "cells" / cell.name / "run" / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / "latest").write_text("step2")
        return checkpoints, Retrier(tmp_path).after_end(cell, CellState(cell.name, "oom", "out of memory", "1"))

    # Half the micro-batch: --resume continues the same checkpoints.
    checkpoints, (retry, decision) = oom_after_a_checkpoint(cell_with({"batch_size": 2, "ds_config": "zero2_offload"}))
    assert (retry.train["batch_size"], decision.note) == (1, "micro-batch 2 x 1 -> 1 x 2") and checkpoints.is_dir()
    # Offload: another ZeRO layout, which DeepSpeed cannot load: afresh, the old ones set aside.
    cell = cell_with({"batch_size": 1, "activation_checkpointing": True, "ds_config": "zero2_offload"})
    checkpoints, (retry, decision) = oom_after_a_checkpoint(cell)
    assert retry.train["ds_config"] == "zero3_offload" and not checkpoints.exists()
    (aside,) = checkpoints.parent.glob("checkpoints.zero2_offload.*")
    assert (aside / "latest").read_text() == "step2"
    assert decision.note == (f"offload: zero2_offload -> zero3_offload; starts afresh: DeepSpeed loads a zero2_offload "
                             f"checkpoint only under zero2_offload (kept in {aside.name})")
    assert read_history(tmp_path, cell.name)[-1]["note"] == decision.note
