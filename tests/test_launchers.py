"""`python -m attempt_dist.train` under the standard launchers: torchrun -m and accelerate launch
(2 CPU processes each). The same tiny run under both must give the same record."""

import pytest

from tests.train_helpers import TINY, launch, result

pytestmark = pytest.mark.slow
RUN = [*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "2", "--max-train-examples", "4",
       "--dropout", "0", "--no-checkpoints"]


def test_torchrun_and_accelerate_launch_run_the_module_on_two_processes(tmp_path):
    pytest.importorskip("accelerate")
    by_torchrun, by_accelerate = tmp_path / "torchrun", tmp_path / "accelerate"
    launch([*RUN, "--output-dir", str(by_torchrun)], launcher="torchrun", ranks=2, module="attempt_dist.train")
    launch([*RUN, "--output-dir", str(by_accelerate)], launcher="accelerate", ranks=2, module="attempt_dist.train")
    a, b = result(by_torchrun), result(by_accelerate)
    assert (a["world_size"], a["steps"], a["throughput"]["examples"]) == (2, 2, 2 * 2 * 2)
    assert (b["world_size"], b["steps"]) == (2, 2)
    assert a["nodes"] == b["nodes"] == 1  # two ranks of one host
    assert len(a["train_loss"]) == 2 and a["train_loss"] == b["train_loss"]
