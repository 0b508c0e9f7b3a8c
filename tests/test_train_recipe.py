"""The training recipe on one rank: result record, loss, resume after a kill, bad input."""

import json
import os

import pytest
import torch

from attempt_dist.methods.prompts import read_prompt
from attempt_dist.training import tracking
from attempt_dist.finished.record import read_record
from tests.train_helpers import TINY, assert_same_training, launch, make_library, result, trainable


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return make_library(tmp_path_factory.mktemp("lib") / "prompts")


def test_prompt_tuning_run_leaves_a_complete_record(tmp_path):
    out = tmp_path / "run"
    launch([*TINY, "--method", "prompt", "--tasks", "rte,cb", "--max-steps", "12", "--lr", "0.3",
            "--output-dir", str(out)])
    rec = result(out)
    assert rec["status"] == "completed" and rec["steps"] == 12
    assert set(rec["metrics"]["test"]) == {"rte", "cb"}
    assert set(rec["metrics"]["test"]["cb"]) == {"accuracy", "f1_macro"}  # each task its own metric
    assert rec["params"] == {"trainable": 2 * 4 * 32, "trainable_per_task": 4 * 32, "total": 74368}
    assert rec["learning_rates"] == {"prompts": 0.3}
    assert rec["warmup_steps"] == 1  # 500 capped at a tenth of a 12-step run
    assert rec["warmup_capped"] is True  # ... because --max-steps made it a smoke run, and it says so
    for key in ("memory", "throughput", "versions", "wall_time_s", "config", "world_size"):
        assert key in rec
    assert rec["throughput"]["train_examples_per_s"] > 0
    steady = rec["throughput"]["steady"]  # 12 steps: 3 of warm-up left out, 9 timed
    assert steady["warmup_steps"] == 3 and steady["timed_steps"] == 9
    assert steady["examples_per_s"] > 0 and steady["tokens_per_s"] > steady["examples_per_s"]
    assert 0 <= steady["padding_fraction"] < 1 and steady["model_tflops_per_s"] > 0
    assert steady["mfu"] is None  # the CPU has no known peak
    train_lines = [row for row in tracking.read_metrics(out) if row["kind"] == "train"]
    assert train_lines[-1]["steady"]["timed_steps"] == 9
    # what evaluating cost: dev at the last step and at the end, test at the end; per generated token
    evals = rec["throughput"]["eval"]
    assert (evals["dev"]["calls"], evals["test"]["calls"]) == (2, 1)
    for spent in evals.values():
        assert spent["generated_tokens"] >= spent["decode_steps"] > 0  # 2 examples per task and batch
        # seconds are rounded to ms: up to 0.5 ms over the tokens, which a fast evaluation notices
        assert spent["ms_per_generated_token"] == pytest.approx(1000 * spent["seconds"] / spent["generated_tokens"],
                                                                rel=1e-2, abs=0.5 / spent["generated_tokens"] + 1e-4)
    share = rec["throughput"]["eval_share"]
    assert 0 < share < 1 and share == pytest.approx(sum(s["seconds"] for s in evals.values()) / rec["wall_time_s"],
                                                    rel=1e-2, abs=0.0005 * len(evals) / rec["wall_time_s"] + 1e-4)
    losses = rec["train_loss"]
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["tasks"] == ["rte", "cb"] and saved["deepspeed"]["train_batch_size"] == 2
    preds = [json.loads(line) for line in (out / "predictions" / "test.jsonl").read_text().splitlines()]
    assert {p["task"] for p in preds} == {"rte", "cb"}
    typed = read_record(out / "result.json")  # a whole record of the current schema, every field typed
    assert typed.schema == 2 and typed.params.trainable == 2 * 4 * 32 and typed.metrics == rec["metrics"]
    assert typed.steps == 12 and len(typed.train_loss) == 12 and typed.deepspeed.config == "zero0"
    # the score best-on-dev compares: each task's headline metric (CB's is accuracy), not their mean
    test = rec["metrics"]["test"]
    assert rec["score"]["test"] == pytest.approx((test["rte"]["accuracy"] + test["cb"]["accuracy"]) / 2)


def test_attempt_gate_trains_at_its_own_rate(tmp_path, library):
    out = tmp_path / "run"
    launch([*TINY, "--method", "attempt", "--tasks", "rte", "--source-prompts", str(library),
            "--max-steps", "2", "--lr", "0.3", "--gate-lr", "0.05", "--output-dir", str(out)])
    rec = result(out)
    assert rec["learning_rates"] == {"prompts": 0.3, "gate": 0.05}
    state = trainable(out)
    assert {k for k in state} == {"prompt.target", "prompt.gate.down.weight", "prompt.gate.up.weight",
                                  "prompt.gate.norm.weight", "prompt.gate.norm.bias"}
    # The target prompt started from the MNLI source prompt (classification task, Appendix B.4).
    mnli, _ = read_prompt(library / "mnli.safetensors")
    assert state["prompt.target"].shape == (1, 4, 32)
    assert not torch.equal(state["prompt.target"][0], mnli)  # trained away from its start...
    assert torch.allclose(state["prompt.target"][0], mnli, atol=1.0)  # ...but from there


@pytest.mark.parametrize("data", [["--tasks", "rte"], ["--tasks", "rte,cb", "--group-by-length"]],
                         ids=["random-batches", "length-grouped"])
def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, data):
    common = [*TINY, "--method", "prompt", *data, "--max-steps", "8", "--save-every", "2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    launch([*common, "--output-dir", str(straight)])
    killed = launch([*common, "--output-dir", str(resumed)], env={"ATTEMPT_DIST_CRASH_AFTER_STEP": "4"}, check=False)
    assert killed.returncode != 0 and not (resumed / "result.json").exists()
    assert (resumed / "checkpoints" / "latest").read_text().strip() == "step4"
    refused = launch([*common, "--output-dir", str(resumed)], check=False)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    launch([*common, "--output-dir", str(resumed), "--resume"])
    a, b = trainable(straight), trainable(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert result(resumed)["train_loss"] == result(straight)["train_loss"]  # history survives the kill


def test_activation_checkpointing_run_has_the_same_losses(tmp_path):
    """fp32, ZeRO 0, dropout on: recomputing the T5 blocks in backward changes nothing."""
    common = [*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "4", "--lr", "0.3"]
    plain, ckpt = tmp_path / "plain", tmp_path / "ckpt"
    launch([*common, "--output-dir", str(plain)])
    launch([*common, "--activation-checkpointing", "--output-dir", str(ckpt)])
    assert json.loads((ckpt / "config.json").read_text())["train"]["activation_checkpointing"] is True
    assert_same_training(ckpt, plain)


def test_finished_run_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    args = [*TINY, "--method", "bitfit", "--tasks", "rte", "--max-steps", "1", "--output-dir", str(out)]
    launch(args)
    again = launch(args, check=False)
    assert again.returncode == 2 and "already holds a finished run" in again.stderr
    launch([*args, "--overwrite"])


@pytest.mark.parametrize("extra, message", [
    (["--method", "prompt", "--tasks", "boolqq"], "unknown task 'boolqq'"),
    (["--method", "nonesuch", "--tasks", "rte"], "unknown method 'nonesuch'"),
    (["--model", "t5-huge", "--method", "prompt", "--tasks", "rte"], "unknown backbone 't5-huge'"),
    (["--method", "attempt", "--tasks", "rte"], "attempt needs --source-prompts"),
    (["--method", "prompt", "--tasks", "rte", "--gpu-mem-cap", "lots"], "cannot read size 'lots'"),
    (["--method", "prompt", "--tasks", "rte", "--batch-size", "0"], "--batch-size must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, extra, message, capsys):
    """Configuration mistakes are caught before any rank starts (so in-process is faithful)."""
    from attempt_dist.training.recipe import main

    out = tmp_path / "run"
    assert main([*TINY, *extra, "--max-steps", "1", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_two_runs_in_one_process_both_train_and_leave_it_as_they_found_it(tmp_path):
    """The sweep's debug executor runs cell after cell in its own process: the second run's
    deepspeed.initialize once failed on the first run's process group ("Group ... is not
    registered"), and each run left its RANK/MASTER_PORT behind for whatever ran next."""
    from attempt_dist.distributed.env import DIST_VARS, group_is_up
    from attempt_dist.training.recipe import main

    before = {name: os.environ.get(name) for name in DIST_VARS}
    for run in ("first", "second"):
        assert main([*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "1", "--no-checkpoints",
                     "--output-dir", str(tmp_path / run)]) == 0
        assert not group_is_up()
        assert {name: os.environ.get(name) for name in DIST_VARS} == before
    assert result(tmp_path / "second")["steps"] == 1


def test_missing_data_offline_names_what_it_needs(tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    proc = launch(["--model", "t5-tiny", "--method", "prompt", "--tasks", "rte", "--data-dir", str(empty),
                   "--output-dir", str(tmp_path / "run")], check=False)
    assert proc.returncode == 2 and "rte" in proc.stderr and "nyu-mll/glue" in proc.stderr


def test_library_from_another_backbone_is_refused(tmp_path):
    lib = make_library(tmp_path / "lib", backbone="t5-small")
    proc = launch([*TINY, "--method", "attempt", "--tasks", "rte", "--source-prompts", str(lib),
                   "--max-steps", "1", "--output-dir", str(tmp_path / "run")], check=False)
    assert proc.returncode == 2 and "trained on 't5-small', not 't5-tiny'" in proc.stderr


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = launch([*TINY, "--method", "prompt", "--tasks", "rte", "--output-dir", str(blocker / "run")], check=False)
    assert proc.returncode == 2 and "is not writable" in proc.stderr


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = launch([*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "20", "--save-every", "1",
                   "--lr", "1e30", "--output-dir", str(out)], check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "the loss became nan" in proc.stderr and "last good checkpoint" in proc.stderr
    assert json.loads((out / "failure.json").read_text())["status"] == "failed"
    assert not (out / "result.json").exists()
    tag = (out / "checkpoints" / "latest").read_text().strip()
    assert (out / "checkpoints" / tag).is_dir()


def test_nan_loss_under_accumulation_stops_at_the_same_step_before_its_update(tmp_path):
    # The loss is read once per optimizer step (not per micro-batch): a non-finite loss in any
    # micro-batch of step 4 still stops the run at step 4, with step 3's checkpoint the last.
    out = tmp_path / "run"
    proc = launch([*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "20", "--save-every", "1",
                   "--lr", "1e30", "--grad-accum", "2", "--output-dir", str(out)], check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "the loss became nan at step 4;" in proc.stderr
    assert (out / "checkpoints" / "latest").read_text().strip() == "step3"


def test_out_of_memory_is_recorded_with_the_config_to_try(tmp_path, monkeypatch, capsys):
    """A CUDA OOM anywhere in the run becomes failure.json (status oom) and exit code 3."""
    from attempt_dist.training import recipe as train
    from attempt_dist.training.failure import EXIT_OOM
    from attempt_dist.training.config import TrainConfig

    def no_memory(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train.Recipe, "setup", no_memory)
    cfg = TrainConfig(model="t5-3b", method="finetune", tasks=["boolq"], output_dir=str(tmp_path / "run"), batch_size=1)
    assert train.run(cfg) == EXIT_OOM
    failure = json.loads((tmp_path / "run" / "failure.json").read_text())
    assert failure["status"] == "oom" and "zero3_offload" in failure["reason"]
    assert read_record(tmp_path / "run" / "failure.json").config["model"] == "t5-3b"
    assert "does not fit" in capsys.readouterr().err
    assert not (tmp_path / "run" / "result.json").exists()


def test_epochs_drive_the_schedule_and_dev_is_evaluated_every_epoch(tmp_path):
    out = tmp_path / "run"
    args = [a for a in TINY if a not in ("--eval-every", "1000")]
    launch([*args, "--method", "prompt", "--tasks", "rte", "--max-train-examples", "8", "--batch-size", "4",
            "--epochs", "3", "--output-dir", str(out)])
    rec = result(out)
    assert rec["steps"] == 3 * 2  # 8 examples / batch 4 = 2 steps an epoch
    assert [h["step"] for h in rec["history"]] == [2, 4, 6]
    assert [h["epoch"] for h in rec["history"]] == [1.0, 2.0, 3.0]
    # B.5's 500 warm-up steps whatever the length: only --max-steps runs are capped.
    assert rec["warmup_steps"] == 500 and rec["warmup_capped"] is False


def test_train_command_passes_every_option_through(capsys):
    from attempt_dist.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--gpu-mem-cap", "--ds-config", "--source-prompts", "--resume", "--gate-lr"):
        assert option in out
