"""Test-wide settings: never touch the network, run DeepSpeed on the CPU."""

import os

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tokenised-data cache of this test session only (subprocesses inherit it).
import tempfile as _tempfile

os.environ.setdefault("ATTEMPT_DIST_CACHE", _tempfile.mkdtemp(prefix="attempt-dist-cache-"))

import pytest  # noqa: E402

# What a launcher exports for each rank. Code under test sets them in os.environ directly
# (ensure_distributed_env, init_distributed or Recipe called in the test process make it rank 0
# of 1 on a free MASTER_PORT; only the trainer's and the pipeline's main put them back, through
# distributed/in_process.py), and monkeypatch.delenv of an absent variable restores nothing: a
# later test's subprocess then inherited that port and died with EADDRINUSE.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _rank_variables_end_as_they_began():
    before = {name: os.environ.get(name) for name in _RANK_VARIABLES}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
