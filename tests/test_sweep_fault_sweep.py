"""A fault-injected 6-cell sweep finishes with no human action: one cell preempted, one out of
memory at its first layout (after a checkpoint), one diverging, one losing a node, one losing a
rank, one plain; 5 end done and the diverging one failed with its reason, and `sweep status`
shows every retry.

Fake trainers (test_sweep_fakes.py) in the debug executor: SLURM's verdicts (PREEMPTED,
NODE_FAIL) are what the scheduler's accounting would say of those cells' first jobs. The pieces
are proven on a real SLURM separately (test_sweep_slurm.py: preemption and time limit requeue and
resume; test_slurm_multinode.py: a lost node, a stuck rank requeued by the sweep)."""

import json

from attempt_dist import cli
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from attempt_dist.sweep import state as sweep_state
from test_sweep_fakes import FAKES, read_log, fake_env  # noqa: F401 (fake_env: a fixture)

CUT_BY_SLURM = {"preempted-once": "PREEMPTED", "node-lost-once": "NODE_FAIL"}
NAMES = {m: f"t5-tiny__{m}__boolq__s1" for m in
         ("prompt", "preempted-once", "big-batch", "diverges", "node-lost-once", "stalls-once")}


def test_six_faulty_cells_end_five_done_and_one_diverged(tmp_path, fake_env, monkeypatch, capsys):
    real_job_alive = sweep_state.job_alive

    def accounting(job):  # how SLURM would have ended the first job of the cut cells
        method = job["argv"][job["argv"].index("--method") + 1]
        if method in CUT_BY_SLURM:
            return False, f"slurm job {job['job_id']} ended {CUT_BY_SLURM[method]}"
        return real_job_alive(job)

    monkeypatch.setattr(sweep_state, "job_alive", accounting)
    sweep = parse_sweep({
        **FAKES, "name": "faults",
        "grid": [{"models": ["t5-tiny"], "methods": ["prompt", "preempted-once", "diverges", "node-lost-once",
                                                     "stalls-once"], "tasks": ["boolq"], "seeds": [1]},
                 {"models": ["t5-tiny"], "methods": ["big-batch"], "tasks": ["boolq"], "seeds": [1],
                  "train": {"batch_size": 8}}],
        "executor": {"kind": "debug", "max_retries": 2},
    })
    run = tmp_path / "run"
    assert run_sweep(sweep, run) == 1  # the diverged cell is not done
    states = {s.name: s for s in collect_states(run)}
    assert {n: s.status for n, s in states.items()} == {
        **{name: "done" for name in NAMES.values()}, NAMES["diverges"]: "failed"}
    assert states[NAMES["diverges"]].detail.startswith("loss diverged (nan) at step 3")
    retries = {m: [(e["cause"], e["action"]) for e in states[n].retries] for m, n in NAMES.items()}
    assert retries == {"prompt": [], "preempted-once": [("preempted", "requeue")],
                       "big-batch": [("out of memory", "re-plan")], "diverges": [("diverged", "give up")],
                       "node-lost-once": [("node failure", "requeue")], "stalls-once": [("rank lost", "requeue")]}
    # Each retry resumed from the checkpoint its first run left; the re-plan too, at half the
    # micro-batch (the same batch: --resume allows that split, test_faults.py).
    calls = [c for c in read_log(fake_env) if c["kind"] == "train"]
    for method in ("preempted-once", "node-lost-once", "stalls-once", "big-batch"):
        assert [c["resume"] for c in calls if c["method"] == method] == [None, "auto"], method  # --resume auto
    assert [(c["batch_size"], c["grad_accum"]) for c in calls if c["method"] == "big-batch"] == [("8", None), ("4", "2")]

    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "400")
    assert cli.main(["sweep", "status", str(run)]) == 1
    table = capsys.readouterr().out
    assert "5 done, 0 running, 1 failed, 0 oom, 0 pending" in table
    for shown in ("preempted -> requeue", "node failure -> requeue", "rank lost -> requeue",
                  "out of memory -> re-plan (micro-batch 8 x 1 -> 4 x 2)", "diverged -> give up"):
        assert shown in table, shown
    assert cli.main(["sweep", "status", str(run), "--json"]) == 1
    shown = {c["name"]: c["retries"] for c in json.loads(capsys.readouterr().out)["cells"]}
    assert shown[NAMES["big-batch"]][0]["layout"]["batch_size"] == 4
