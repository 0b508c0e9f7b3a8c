"""Two real ranks on the CPU (gloo) through the deepspeed launcher and torchrun, ZeRO 0/2/3.

Every run checks: the loss falls, the frozen backbone is bit-identical to its initial value,
both ranks hold identical trainable weights; and 2 ranks x batch b equal 1 rank x batch b with
2 accumulation steps.
"""

import pytest
import torch

from tests.train_helpers import TINY, assert_same_training, launch, make_library, result, trainable

pytestmark = pytest.mark.slow
# Four training examples per task, so every step sees the same data and the loss must fall.
FIXED = [*TINY, "--max-train-examples", "4", "--lr", "0.3", "--dropout", "0"]


def check_two_ranks(out, method):
    rec = result(out)
    assert rec["world_size"] == 2
    losses = rec["train_loss"]
    assert losses[-1] < losses[0], losses
    states = [torch.load(out / "debug" / f"rank{r}_state.pt", weights_only=False) for r in (0, 1)]
    initial = torch.load(out / "debug" / "rank0_initial.pt", weights_only=False)
    saved = trainable(out)
    assert saved and len(initial) == len(states[0])
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name]), f"ranks disagree on {name}"
        if name in saved:
            assert not torch.equal(value, initial[name]), f"trainable {name} did not move"
        else:
            assert torch.equal(value, initial[name]), f"frozen {name} changed"
    return rec


@pytest.mark.parametrize("config", ["zero0", "zero2_offload", "zero3_offload"])
def test_attempt_mt_two_ranks_deepspeed_launcher(tmp_path, config):
    lib = make_library(tmp_path / "lib")
    out = tmp_path / "run"
    launch([*FIXED, "--method", "attempt", "--tasks", "rte,cb", "--source-prompts", str(lib),
            "--ds-config", config, "--max-steps", "5", "--output-dir", str(out)],
           launcher="deepspeed", ranks=2, env={"ATTEMPT_DIST_DUMP_STATE": "1"})
    rec = check_two_ranks(out, "attempt")
    assert rec["deepspeed"]["stage"] == {"zero0": 0, "zero2_offload": 2, "zero3_offload": 3}[config]
    assert set(rec["metrics"]["test"]) == {"rte", "cb"}
    assert (out / "attention" / "test.jsonl").exists()


def test_activation_checkpointing_two_ranks_zero3_has_the_same_losses(tmp_path):
    """ZeRO-3 re-gathers each block's weights for the recompute; dropout on, so the replayed
    masks must match too: the same losses and weights as the run without checkpointing."""
    lib = make_library(tmp_path / "lib")
    common = [*FIXED, "--dropout", "0.1", "--method", "attempt", "--tasks", "rte,cb", "--source-prompts", str(lib),
              "--ds-config", "zero3_offload", "--max-steps", "3"]
    plain, ckpt = tmp_path / "plain", tmp_path / "ckpt"
    launch([*common, "--output-dir", str(plain)], launcher="torchrun", ranks=2)
    launch([*common, "--activation-checkpointing", "--output-dir", str(ckpt)], launcher="torchrun", ranks=2,
           env={"ATTEMPT_DIST_DUMP_STATE": "1"})
    rec = check_two_ranks(ckpt, "attempt")
    assert rec["deepspeed"]["stage"] == 3 and rec["config"]["activation_checkpointing"] is True
    assert_same_training(ckpt, plain)


def test_two_ranks_equal_one_rank_with_accumulation(tmp_path):
    common = [*TINY, "--method", "prompt", "--tasks", "rte", "--max-train-examples", "8", "--dropout", "0",
              "--max-steps", "4", "--lr", "0.3"]
    two, one = tmp_path / "two", tmp_path / "one"
    launch([*common, "--output-dir", str(two)], launcher="torchrun", ranks=2)
    launch([*common, "--grad-accum", "2", "--output-dir", str(one)])
    a, b = trainable(two), trainable(one)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert result(two)["throughput"]["examples"] == result(one)["throughput"]["examples"] == 4 * 4


@pytest.mark.parametrize("launcher, ranks, config", [("python", 1, "zero0"), ("torchrun", 2, "zero2_offload"),
                                                     ("deepspeed", 2, "zero3_offload")])
def test_test_set_is_scored_with_the_best_dev_checkpoint(tmp_path, launcher, ranks, config):
    """Dev scores tie (random weights score 0), so the first evaluation (step 2) stays best:
    the final weights must be step 2's, not step 4's, read back from DeepSpeed's own files.
    The 2-rank cases are also prompt tuning's 2-rank checks (ranks agree, backbone frozen)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    out = tmp_path / "run"
    launch([*FIXED, "--method", "prompt", "--tasks", "rte", "--ds-config", config, "--max-steps", "4",
            "--eval-every", "2", "--save-every", "2", "--output-dir", str(out)], launcher=launcher, ranks=ranks,
           env={"ATTEMPT_DIST_DUMP_STATE": "1"})
    rec = check_two_ranks(out, "prompt") if ranks == 2 else result(out)
    assert rec["steps"] == 4 and rec["best"]["step"] == 2
    ckpt = out / "checkpoints"
    if config != "zero0":
        step = {k: get_fp32_state_dict_from_zero_checkpoint(str(ckpt), tag=t)["prompt.weight"] for k, t in
                (("best", "step2"), ("final", "step4"))}
    else:
        step = {k: torch.load(ckpt / t / "mp_rank_00_model_states.pt", weights_only=False)["module"]["prompt.weight"]
                for k, t in (("best", "step2"), ("final", "step4"))}
    final = trainable(out)["prompt.weight"]
    assert not torch.equal(step["best"], step["final"])
    torch.testing.assert_close(final, step["best"].float())


@pytest.mark.parametrize("config", ["zero2_offload", "zero3_offload"])
def test_two_rank_kill_and_resume_equals_an_uninterrupted_run(tmp_path, config):
    common = [*TINY, "--method", "attempt", "--tasks", "rte,cb", "--max-steps", "6", "--save-every", "2",
              "--ds-config", config]
    lib = make_library(tmp_path / "lib")
    common += ["--source-prompts", str(lib)]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    launch([*common, "--output-dir", str(straight)], launcher="torchrun", ranks=2)
    killed = launch([*common, "--output-dir", str(resumed)], launcher="torchrun", ranks=2,
                    env={"ATTEMPT_DIST_CRASH_AFTER_STEP": "4"}, check=False)
    assert killed.returncode != 0 and not (resumed / "result.json").exists()
    launch([*common, "--output-dir", str(resumed), "--resume"], launcher="torchrun", ranks=2)
    a, b = trainable(straight), trainable(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert result(resumed)["train_loss"][-2:] == result(straight)["train_loss"][-2:]
