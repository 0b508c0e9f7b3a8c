"""Rank/world discovery, launcher arguments, world-size-1 helpers and early engine checks."""

from __future__ import annotations

import argparse
import os

import pytest
import torch
from torch import nn

from attempt_dist import distributed as dist
from attempt_dist.errors import UserError

VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE",
        "SLURM_NTASKS", "SLURM_LOCALID", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_PROCID",
        "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_JOB_ID", "SLURM_STEP_ID",
        "SLURMD_NODENAME")


@pytest.fixture
def clean_env(monkeypatch):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_plain_python_becomes_rank_zero_of_one(clean_env):
    info = dist.ensure_distributed_env()
    assert info == dist.DistInfo(rank=0, local_rank=0, world_size=1, is_main=True)
    assert (os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["WORLD_SIZE"]) == ("0", "0", "1")
    assert os.environ["MASTER_ADDR"] == "127.0.0.1"
    assert 1024 <= int(os.environ["MASTER_PORT"]) <= 65535


def test_launcher_values_are_kept(clean_env):
    for var, value in {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node7", "MASTER_PORT": "29500"}.items():
        clean_env.setenv(var, value)
    assert dist.ensure_distributed_env() == dist.DistInfo(rank=3, local_rank=1, world_size=4, is_main=False)
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("node7", "29500")


def test_slurm_local_id_gives_the_local_rank(clean_env):
    for var, value in {"RANK": "5", "WORLD_SIZE": "8", "SLURM_LOCALID": "1", "MASTER_ADDR": "n", "MASTER_PORT": "1"}.items():
        clean_env.setenv(var, value)
    assert dist.ensure_distributed_env().local_rank == 1


def _srun_task(env, procid, localid, node, *, tasks="4", nodelist="gpu[007-008]", job="123456", step="2"):
    """What srun exports to one task of a 2-node x 2-task step (and nothing of torch's)."""
    for var, value in {"SLURM_PROCID": procid, "SLURM_LOCALID": localid, "SLURM_STEP_NUM_TASKS": tasks,
                       "SLURM_NTASKS": tasks, "SLURM_STEP_NODELIST": nodelist, "SLURM_JOB_NODELIST": nodelist,
                       "SLURM_JOB_ID": job, "SLURM_STEP_ID": step, "SLURMD_NODENAME": node}.items():
        env.setenv(var, value)


def test_srun_tasks_derive_ranks_first_node_and_one_port_from_slurm(clean_env):
    seen = []
    for procid, localid, node in (("0", "0", "gpu007"), ("1", "1", "gpu007"), ("2", "0", "gpu008"), ("3", "1", "gpu008")):
        for var in VARS:
            clean_env.delenv(var, raising=False)
        _srun_task(clean_env, procid, localid, node)
        info = dist.ensure_distributed_env()
        seen.append((info.rank, info.local_rank, info.world_size, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]))
    port = str(20000 + (123456 * 31 + 2) % 12000)
    assert seen == [(0, 0, 4, "gpu007", port), (1, 1, 4, "gpu007", port), (2, 0, 4, "gpu007", port),
                    (3, 1, 4, "gpu007", port)]


def test_srun_keeps_a_launchers_own_variables(clean_env):
    _srun_task(clean_env, "1", "1", "gpu007")
    for var, value in {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "head", "MASTER_PORT": "29500"}.items():
        clean_env.setenv(var, value)
    dist.ensure_distributed_env()
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("head", "29500")


def test_a_batch_script_of_two_tasks_is_no_srun_step(clean_env):
    # sbatch -n2 runs the script once with SLURM_NTASKS=2 and SLURM_PROCID=0: no step variables.
    for var, value in {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_ID": "9"}.items():
        clean_env.setenv(var, value)
    with pytest.raises(UserError, match="start each rank with srun"):
        dist.ensure_distributed_env()


@pytest.mark.parametrize("nodelist,first", [
    ("n1", "n1"), ("lslurm[1-2]", "lslurm1"), ("gpu[003-004,9],cpu1", "gpu003"), ("a-[07,09]-x", "a-07-x"),
    ("node12,node3", "node12"), ("rack2-n[10-11]", "rack2-n10"),
])
def test_first_host_of_a_slurm_node_list(nodelist, first):
    from attempt_dist.distributed.slurm_env import first_host

    assert first_host(nodelist) == first


def test_job_ports_agree_per_job_and_differ_between_jobs():
    from attempt_dist.distributed.slurm_env import PORT_COUNT, PORT_FIRST, job_port

    ports = {job_port(job) for job in range(1000, 1100)}
    assert len(ports) == 100 and all(PORT_FIRST <= p < PORT_FIRST + PORT_COUNT for p in ports)
    assert job_port(1000, 0) != job_port(1000, 1)


@pytest.mark.parametrize(
    "env,match",
    [
        ({"SLURM_NTASKS": "4"}, "TorchDistributedEnvironment"),
        ({"OMPI_COMM_WORLD_SIZE": "2"}, "RANK/WORLD_SIZE are not set"),
        ({"RANK": "0"}, "missing WORLD_SIZE"),
        ({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "not a valid rank"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x'"),
        ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_PORT": "1"}, "MASTER_ADDR"),
        ({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, "LOCAL_RANK"),
    ],
)
def test_broken_launcher_environments(clean_env, env, match):
    for var, value in env.items():
        clean_env.setenv(var, value)
    with pytest.raises(UserError, match=match):
        dist.ensure_distributed_env()


def test_launcher_local_rank_argument_is_accepted():
    parser = dist.add_launcher_args(argparse.ArgumentParser())
    parser.add_argument("--steps", type=int)
    assert parser.parse_args(["--local_rank=1", "--steps", "3"]).steps == 3
    assert parser.parse_args(["--local-rank", "0"]).launcher_local_rank == 0


@pytest.mark.skipif(torch.distributed.is_initialized(), reason="needs a process without a process group")
def test_collectives_are_identities_at_world_size_one():
    dist.barrier()
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}]
    assert dist.broadcast_object([1, 2]) == [1, 2]


def test_gathered_passes_plain_parameters_through():
    layer = nn.Linear(3, 2)
    with dist.gathered(layer.parameters()):
        assert layer.weight.shape == (2, 3)
    assert dist.needs_synced_gpus({"zero_optimization": {"stage": 3}}) is False  # one rank


def test_backbone_context_is_plain_below_stage_three():
    with dist.backbone_init_context({"zero_optimization": {"stage": 2}}):
        layer = nn.Linear(3, 2)
    assert not hasattr(layer.weight, "ds_id") and layer.weight.numel() == 6


def _opt(*groups):
    return torch.optim.AdamW([{"params": g, "lr": lr} for g, lr in groups])


def test_engine_refuses_empty_groups_and_config_optimizers():
    # Both checks run before any process group or DeepSpeed engine is created.
    model = nn.Linear(3, 2)
    cfg = {"zero_optimization": {"stage": 0}, "train_batch_size": 1}
    with pytest.raises(UserError, match="group 1 .* has no parameters"):
        dist.initialize_engine(model, _opt((list(model.parameters()), 0.3), ([], 0.1)), None, cfg)
    with pytest.raises(UserError, match="\"optimizer\" section"):
        dist.initialize_engine(model, _opt((list(model.parameters()), 0.3)), None, {**cfg, "optimizer": {"type": "Adam"}})


def test_nvme_without_libaio_is_a_user_error():
    from deepspeed.accelerator import get_accelerator

    builder = get_accelerator().create_op_builder("AsyncIOBuilder")
    if builder is not None and builder.is_compatible(verbose=False):
        pytest.skip("libaio is installed here")
    cfg = dist.load_ds_config("zero3_nvme", micro_batch_size=1, grad_accum=1, world_size=1, nvme_path="/tmp")
    with pytest.raises(UserError, match="libaio"):
        with dist.backbone_init_context(cfg):
            pass


def test_shm_comm_op_is_not_built_on_cpu(monkeypatch):
    # DeepSpeed compiles deepspeed_shm_comm (~65 s on 2 cores) whenever its torch backend
    # starts on the CPU accelerator. The patch must land on deepspeed.comm.torch itself:
    # `import deepspeed.comm.torch as m` yields the real torch (deepspeed.comm re-exports it).
    import importlib

    from attempt_dist.distributed import env

    module = importlib.import_module("deepspeed.comm.torch")
    monkeypatch.setattr(module, "build_shm_op", module.build_shm_op)  # restored after the test
    monkeypatch.delenv("ATTEMPT_DS_SHM_COMM", raising=False)
    env._skip_shm_comm_build()
    assert module.build_shm_op() is None
    assert not hasattr(torch, "build_shm_op")


def test_a_submitit_job_rendezvous_port_lies_below_the_ephemeral_range(monkeypatch):
    """submitit draws MASTER_PORT from 20000-60000, where an outgoing connection can hold it
    (a CI run died with EADDRINUSE on 56640); a cell's tasks all take the port agreed from
    SLURM_JOB_ID, below Linux's ephemeral range, and consecutive jobs get different ones."""
    import submitit

    from attempt_dist.distributed.slurm_env import PORT_FIRST, PORT_COUNT, job_port
    from attempt_dist.sweep import jobs

    class FakeJobEnvironment:
        job_id, hostnames, global_rank, num_tasks, local_rank, num_nodes = "4242", ["node7"], 1, 2, 1, 1

    monkeypatch.setattr(submitit, "JobEnvironment", FakeJobEnvironment)
    monkeypatch.setattr(submitit.helpers, "JobEnvironment", FakeJobEnvironment)
    for key in jobs.DIST_VARS:
        monkeypatch.setenv(key, "stale")
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    jobs._export_distributed_env()
    port = int(os.environ["MASTER_PORT"])
    assert port == job_port(4243) != job_port(4242)
    assert PORT_FIRST <= port < PORT_FIRST + PORT_COUNT <= 32768
    assert (os.environ["MASTER_ADDR"], os.environ["RANK"], os.environ["WORLD_SIZE"]) == ("node7", "1", "2")
