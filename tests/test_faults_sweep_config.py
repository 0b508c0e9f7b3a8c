"""A sweep folder holds one configuration (issue 24): the cells' resolved options are recorded at
the first launch; a relaunch that trains a cell differently from the folder's result is refused
with the list of differences, and nothing is written or submitted, unless --rerun-changed, which
sets the old cell folders aside (kept, recorded) and runs the changed cells afresh. Cluster
settings are no part of it. Fake trainers (test_sweep_fakes.py) on the debug executor."""

import json
import os

import pytest
import yaml

from attempt_dist import cli
from attempt_dist.atomic_files import read_json, write_json_atomic
from attempt_dist.errors import UserError
from attempt_dist.plots.records import collect
from attempt_dist.sweep import collect_states, parse_sweep, run_sweep
from test_sweep_fakes import FAKES, read_log, fake_env  # noqa: F401 (fake_env: a fixture)

BOOLQ, CB = "t5-tiny__prompt__boolq__s1", "t5-tiny__prompt__cb__s1"


def _raw(cb_lr=0.3, seeds=(1,), tasks=("boolq", "cb"), **train):
    return {**FAKES, "name": "cfg", "train": {"lr": 0.3, **train},
            "grid": [{"models": ["t5-tiny"], "methods": ["prompt"], "tasks": list(tasks), "seeds": list(seeds)}],
            "overrides": [{"when": {"task": ["cb"]}, "train": {"lr": cb_lr}}],
            "executor": {"kind": "debug", "time": 5}}


def _tree(folder):
    """Every file under `folder` with its bytes (the launch lock file aside)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_relaunch_with_an_edited_lr_is_refused_listing_the_cell_and_nothing_is_written(tmp_path, fake_env, capsys):
    run, sweep_file = tmp_path / "run", tmp_path / "cfg.yaml"
    assert cli.main(["sweep", str(_write(sweep_file, _raw())), "--output-dir", str(run)]) == 0
    before, calls = _tree(run), read_log(fake_env)
    capsys.readouterr()

    _write(sweep_file, _raw(cb_lr=0.5))
    assert cli.main(["sweep", str(sweep_file), "--output-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"changed {CB}: lr 0.3 -> 0.5" in err and BOOLQ not in err
    assert "--rerun-changed" in err
    assert read_log(fake_env) == calls and _tree(run) == before  # nothing submitted, nothing written
    # A dry run says the same (it only reads).
    assert cli.main(["sweep", str(sweep_file), "--output-dir", str(run), "--dry-run"]) == 2
    assert f"changed {CB}: lr 0.3 -> 0.5" in capsys.readouterr().err


def test_cluster_settings_leave_the_configuration_alone(tmp_path, fake_env, capsys):
    run, sweep_file = tmp_path / "run", _write(tmp_path / "cfg.yaml", _raw())
    assert cli.main(["sweep", str(sweep_file), "--output-dir", str(run)]) == 0
    record = read_json(run / "configuration.json")  # written at the first launch
    assert record["cells"][CB]["lr"] == 0.3 and record["cells"][BOOLQ]["ranks"] == 1
    calls = read_log(fake_env)

    cluster = _write(tmp_path / "cluster.yaml", {"requeues": 1, "max_retries": 0, "qos": "low", "mem": "8G"})
    # How a cell runs, not what it trains: a longer rank timeout, other checkpoint and log steps.
    _write(sweep_file, _raw(dist_timeout=900, save_every=50, log_every=5))
    assert cli.main(["sweep", str(sweep_file), "--output-dir", str(run), "--partition", "gpu", "--account", "me",
                     "--time", "00:30:00", "--executor-file", str(cluster)]) == 0
    assert read_log(fake_env) == calls and "nothing to do" in capsys.readouterr().out
    assert read_json(run / "configuration.json") == record


def test_options_are_compared_resolved_not_as_written(tmp_path):
    """The default trainer's resolution: an lr written out at the method's default is the lr left
    out, and the sweep folder's own paths (the library's prompts) count relative to it."""
    from attempt_dist.sweep.configuration import compare, differences, run_settings, sweep_configuration

    # how a cell runs, declared on each option: memory, paths on this machine, logging cadence
    assert {"gpu_mem_cap", "dist_timeout", "save_every", "cache_dir"} <= run_settings()
    assert not {"lr", "max_steps", "data_dir", "seed", "prompt_length"} & run_settings()

    def sweep(**train):
        return parse_sweep({"name": "r", "train": {"max_steps": 1, **train},
                            "grid": [{"models": ["t5-tiny"], "methods": ["attempt"], "tasks": ["rte"], "seeds": [1]}],
                            "libraries": {"glue": {"sources": ["mnli"], "max_steps": 1}}, "executor": {"kind": "debug"}})

    plain = sweep()
    recorded = sweep_configuration(plain, tmp_path / "a")
    options = recorded["cells"]["t5-tiny__attempt__rte__s1"]
    assert options["source_prompts"] == "{sweep}/library/glue__t5-tiny/run/prompts"
    assert not compare(recorded, sweep(lr=options["lr"]), tmp_path / "b")  # another folder, the default written out
    changed = compare(recorded, sweep(lr=options["lr"] * 2), tmp_path / "a").changed
    assert changed == {"t5-tiny__attempt__rte__s1": [f"lr {options['lr']} -> {options['lr'] * 2}"]}
    # As written (a custom trainer's options): an option dropped from the file is a change.
    assert differences({"lr": 0.3}, {}, both_sides_only=False) == ["lr 0.3 -> (not set)"]
    assert differences({"lr": 0.3}, {}, both_sides_only=True) == []


def test_added_cells_run_and_a_removed_cell_with_results_is_refused(tmp_path, fake_env, capsys):
    run = tmp_path / "run"
    assert run_sweep(parse_sweep(_raw()), run) == 0
    calls = len(read_log(fake_env))

    # More seeds: the folder's results still are what the file says; only the new cells run.
    assert run_sweep(parse_sweep(_raw(seeds=(1, 2))), run) == 0
    assert sorted(c["tasks"] for c in read_log(fake_env)[calls:]) == ["boolq", "cb"]
    assert "new t5-tiny__prompt__boolq__s2" in capsys.readouterr().out
    assert set(read_json(run / "configuration.json")["cells"]) == {BOOLQ, CB, "t5-tiny__prompt__boolq__s2",
                                                                    "t5-tiny__prompt__cb__s2"}
    calls = len(read_log(fake_env))

    with pytest.raises(UserError, match=f"removed {CB} \\(ran in this folder\\)"):
        run_sweep(parse_sweep(_raw(seeds=(1, 2), tasks=("boolq",))), run)
    assert len(read_log(fake_env)) == calls


def test_rerun_changed_keeps_the_old_folders_and_runs_only_the_changed_cells(tmp_path, fake_env):
    run = tmp_path / "run"
    assert run_sweep(parse_sweep(_raw()), run) == 0
    old_result = (run / "cells" / CB / "run" / "result.json").read_bytes()
    calls = len(read_log(fake_env))

    edited = parse_sweep(_raw(cb_lr=0.5, seeds=(1,)))
    assert run_sweep(edited, run, rerun_changed=True) == 0
    assert [c["tasks"] for c in read_log(fake_env)[calls:]] == ["cb"]  # the changed cell only
    argv = read_json(run / "cells" / CB / "job.json")["argv"]
    assert argv[argv.index("--lr") + 1] == "0.5"

    kept = run / "replaced" / f"{CB}.1"
    assert (kept / "run" / "result.json").read_bytes() == old_result
    note = read_json(kept / "replaced.json")
    assert note["why"] == "changed" and note["changes"] == ["lr 0.3 -> 0.5"]
    record = read_json(run / "configuration.json")
    assert record["cells"][CB]["lr"] == 0.5 and [e["folder"] for e in record["replaced"]] == [f"replaced/{CB}.1"]
    assert {s.name: s.status for s in collect_states(run)} == {BOOLQ: "done", CB: "done"}
    assert sorted(r.path.parent.name for r in collect(run)) == [BOOLQ, CB]  # plot and compare: no replaced cell

    # The new configuration is now the folder's: relaunching it runs nothing; removing a cell
    # with --rerun-changed sets its folder aside too, and status shows the current cells only.
    calls = len(read_log(fake_env))
    assert run_sweep(edited, run) == 0 and len(read_log(fake_env)) == calls
    assert run_sweep(parse_sweep(_raw(cb_lr=0.5, tasks=("boolq",))), run, rerun_changed=True) == 0
    assert [s.name for s in collect_states(run)] == [BOOLQ]
    assert read_json(run / "replaced" / f"{CB}.2" / "replaced.json")["why"] == "removed from the sweep"


def test_rerun_changed_refuses_a_changed_cell_that_still_runs(tmp_path, fake_env):
    run = tmp_path / "run"
    assert run_sweep(parse_sweep(_raw()), run) == 0
    (run / "cells" / CB / "run" / "result.json").unlink()  # its job is alive (this process) and unfinished
    write_json_atomic(run / "cells" / CB / "job.json", {"kind": "local", "job_id": str(os.getpid())})
    with pytest.raises(UserError, match=f"{CB} .*still run"):
        run_sweep(parse_sweep(_raw(cb_lr=0.5)), run, rerun_changed=True)
    assert not (run / "replaced").exists() and read_json(run / "configuration.json")["cells"][CB]["lr"] == 0.3


def test_a_changed_library_that_is_built_is_refused_even_with_rerun_changed(tmp_path, fake_env):
    run = tmp_path / "run"

    def sweep(max_steps):
        return parse_sweep({**FAKES, "name": "lib", "grid": [{"models": ["t5-tiny"], "methods": ["attempt"],
                                                              "tasks": ["boolq"], "seeds": [1]}],
                            "libraries": {"glue": {"sources": ["mnli", "sst2"], "max_steps": max_steps}},
                            "executor": {"kind": "debug", "time": 5}})

    assert run_sweep(sweep(3), run) == 0
    with pytest.raises(UserError, match="(?s)library glue__t5-tiny: max_steps 3 -> 4.*cannot be rebuilt in place"):
        run_sweep(sweep(4), run, rerun_changed=True)


def test_a_folder_from_before_the_record_is_compared_by_its_sweep_json(tmp_path, fake_env):
    run = tmp_path / "run"
    assert run_sweep(parse_sweep(_raw()), run) == 0
    (run / "configuration.json").unlink()  # launched by a version that kept no record
    assert run_sweep(parse_sweep(_raw()), run) == 0  # the same file: accepted, and recorded now
    assert json.loads((run / "configuration.json").read_text())["resolved"] is False  # a custom trainer: as written
    (run / "configuration.json").unlink()
    with pytest.raises(UserError, match=f"changed {CB}: lr 0.3 -> 0.5"):
        run_sweep(parse_sweep(_raw(cb_lr=0.5)), run)
