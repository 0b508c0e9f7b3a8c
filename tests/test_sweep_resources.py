"""A SLURM `--ds-config auto` cell asks for its plan's host memory, and one whose plan needs more
than a node offers is refused at --dry-run, before anything is queued (sweep/resources.py).
No SLURM needed: the node's memory comes from the executor's node_mem, or a stand-in sinfo."""

import os

import pytest

from attempt_dist import cli
from attempt_dist.errors import UserError
from attempt_dist.sweep import parse_sweep, run_sweep
from attempt_dist.sweep.resources import GIB, RANK_PROCESS_BYTES, HostPlan, node_memory, plan_lines, with_planned_memory
from tests.train_helpers import TINY_SWEEP_TRAIN

CELL = "t5-tiny__prompt__boolq__s1"


def _sweep(executor=None, **train):
    return parse_sweep({
        "name": "mem", "train": {**TINY_SWEEP_TRAIN, "ds_config": "auto", "max_steps": 2, **train},
        "grid": {"models": ["t5-tiny"], "methods": ["prompt"], "tasks": ["boolq"], "seeds": [1]},
        "executor": {"kind": "slurm", "node_mem": "64G", **(executor or {})},
    })


def test_an_auto_cell_asks_for_its_plans_host_memory_per_node():
    # t5-tiny's weights and activations are kilobytes: each rank's process allowance (2 GiB) decides.
    assert RANK_PROCESS_BYTES == 2 * GIB
    sweep, (plan,) = with_planned_memory(_sweep())
    assert sweep.cells[0].executor.mem == "3G" and plan.cell == CELL
    assert 2 * GIB < plan.need_bytes < 2.1 * GIB and plan.offer_bytes == 64 * GIB
    two_ranks, (plan,) = with_planned_memory(_sweep({"tasks_per_node": 2, "nodes": 2}))
    assert two_ranks.cells[0].executor.mem == "5G" and 4 * GIB < plan.need_bytes < 4.2 * GIB
    # Cells the planner does not lay out, and cells not on SLURM, ask for nothing new.
    fixed, plans = with_planned_memory(_sweep(ds_config="zero0"))
    assert plans == [] and fixed.cells[0].executor.mem is None
    local, plans = with_planned_memory(_sweep({"kind": "local", "node_mem": None}))
    assert plans == [] and local.cells[0].executor.mem is None
    # The executor's own mem stays what the job asks for.
    given, (plan,) = with_planned_memory(_sweep({"mem": "16G"}))
    assert given.cells[0].executor.mem == "16G" and "-> mem=16G (the executor's)" in plan.line()


def test_cells_planned_alike_share_one_line_in_their_order():
    a, b, c = (HostPlan(name, "zero0", 2 * GIB, None) for name in ("a", "b", "c"))
    other = HostPlan("d", "zero2", 3 * GIB, None)
    lines = plan_lines([a, other, b, c])
    assert lines == [f"a and 2 more cell(s): {a.what()}", other.line()]
    assert "zero0, 2.0 GiB" in lines[0] and "zero2, 3.0 GiB" in lines[1]


def test_dry_run_lists_the_request_and_refuses_a_plan_no_node_holds(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert run_sweep(_sweep(), tmp_path / "run", dry_run=True) == 0
    out = capsys.readouterr().out
    assert f"{CELL}: --ds-config auto plans zero0, 2.0 GiB of host memory per node -> mem=3G; " \
           "a node offers 64.0 GiB" in out
    assert "mem=3G" in out.split(CELL)[1]  # the cell's executor in the plan's table asks for it
    with pytest.raises(UserError, match=rf"^cell {CELL} needs 2\.0 GiB of host memory per node \(--ds-config auto: "
                                        r"zero0\), the nodes of partition small offer 1\.0 GiB; "):
        run_sweep(_sweep({"node_mem": "1G", "partition": "small"}), tmp_path / "run", dry_run=True)
    with pytest.raises(UserError, match=rf"^cell {CELL} needs 2\.0 GiB .* its executor asks for mem=1G; raise mem to 3G"):
        run_sweep(_sweep({"mem": "1G"}), tmp_path / "run", dry_run=True)
    assert not (tmp_path / "run").exists()  # refused before anything was written or queued


def test_node_mem_on_the_command_line_refuses_in_one_line(tmp_path, capsys):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(f"""
name: mem
train: {{data_dir: {TINY_SWEEP_TRAIN['data_dir']}, ds_config: auto, batch_size: 4, max_steps: 2}}
grid: {{models: [t5-tiny], methods: [prompt], tasks: [boolq], seeds: [1]}}
executor: {{kind: slurm}}
""")
    code = cli.main(["sweep", str(sweep_file), "--dry-run", "--node-mem", "512M", "--output-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: cell {CELL} needs 2.") and "GiB of host memory per node" in err
    assert "the nodes of the cluster offer 0.5 GiB" in err


def test_node_memory_is_the_largest_node_sinfo_reports(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sinfo = bin_dir / "sinfo"
    # sinfo -N -o %m: one line per node, MB; "+" marks a node group of several sizes.
    sinfo.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\nprintf '8000\\n16000+\\n12000\\n'\n")
    sinfo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    spec = _sweep({"node_mem": None, "partition": "gpu"}).cells[0].executor
    assert node_memory(spec) == 16000 * 2**20
    assert (bin_dir / "args").read_text().split() == ["-h", "-N", "-o", "%m", "-p", "gpu"]
    assert node_memory(spec.model_copy(update={"node_mem": "2T"})) == 2048 * GIB  # the executor's word wins
