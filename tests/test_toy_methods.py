"""Every method learns a toy target: on toy_last (t5-toy, attempt_dist/tasks/toy.py) each
method's dev exact match rises MARGIN points above chance within STEPS steps. The same runs
show that a killed and resumed toy ATTEMPT run equals the uninterrupted one, what ATTEMPT's gate
attends to after training, and that predict on the fine-tuned run answers fixed inputs."""

import json

import pytest
import torch

import attempt_dist
from attempt_dist.finished.record import read_record
from attempt_dist.methods import METHODS, needs
from attempt_dist.tasks.toy import RELATED_SOURCE, SOURCES

from tests.toy_helpers import TOY, build_library, chance
from tests.train_helpers import launch, result, trainable

TARGET = "toy_last"  # the last word of a word list: one step from toy_reverse's skill
# Measured (seed 42, 1 thread) at step 40, dev exact match: fine-tuning 100, BitFit 98, Adapter
# 96, ATTEMPT 64, prompt tuning 56, SPoT 50; chance is 26.2 (a random word of the input; the most
# common answer gets 16). 15 points above chance leaves SPoT, the slowest, four examples of room
# for another CPU's rounding without letting a run that learned nothing pass.
STEPS, MARGIN = 40, 15.0
LIBRARY_STEPS = 20  # each source prompt and the prior: enough to carry their skills, not the demo's 60
# Each method's rates for 40 steps of batch 16 on a 296k-parameter backbone. The prompt methods
# keep the paper's 0.3; the others need more than the paper's 3e-4, which in 40 steps leaves
# BitFit and adapters at 0 (measured: they keep reversing the whole list).
RUNS = {
    "finetune": ["--lr", "1e-3"],
    "bitfit": ["--lr", "3e-2"],
    "adapter": ["--lr", "3e-2"],
    "prompt": [],
    "spot": ["--spot-source", RELATED_SOURCE[TARGET]],  # SPoT-g from the related source's prompt
    "attempt": ["--save-every", str(STEPS // 2)],  # checkpoints for the resume test
}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("toy-library"), LIBRARY_STEPS)


def run_args(method: str, library) -> list[str]:
    prompts, prior = library
    inputs = (["--source-prompts", str(prompts)] if needs(method).library else []) + (
        ["--prior", str(prior)] if needs(method).prior else [])
    return [*TOY, "--method", method, "--tasks", TARGET, "--max-steps", str(STEPS), "--eval-every", str(STEPS),
            *inputs, *RUNS[method]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, library):
    """method -> its finished run folder, trained on first use (the tests below share them)."""
    runs = {}

    def get(method: str):
        if method not in runs:
            out = tmp_path_factory.mktemp("toy") / method
            launch([*run_args(method, library), "--output-dir", str(out)])
            runs[method] = out
        return runs[method]

    return get


def test_every_method_has_a_toy_run():
    assert set(RUNS) == set(METHODS)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(RUNS))
def test_every_method_rises_above_chance_on_a_toy_target(trained, method):
    dev = read_record(trained(method) / "result.json").metrics["dev"][TARGET]["em"]
    assert dev >= chance(TARGET) + MARGIN, f"{method}: dev exact match {dev} after {STEPS} steps"


@pytest.mark.slow
def test_a_killed_and_resumed_toy_attempt_run_equals_the_uninterrupted_one(trained, library, tmp_path):
    straight, resumed = trained("attempt"), tmp_path / "resumed"
    args = [*run_args("attempt", library), "--output-dir", str(resumed)]
    killed = launch(args, env={"ATTEMPT_DIST_CRASH_AFTER_STEP": str(STEPS // 2)}, check=False)
    assert killed.returncode != 0 and not (resumed / "result.json").exists()
    assert (resumed / "checkpoints" / "latest").read_text().strip() == f"step{STEPS // 2}"
    launch([*args, "--resume"])
    a, b = trainable(straight), trainable(resumed)
    assert a.keys() == b.keys() and "prompt.gate.down.weight" in a  # the gate's second speed included
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert result(resumed)["train_loss"] == result(straight)["train_loss"]
    assert result(resumed)["metrics"] == result(straight)["metrics"]


@pytest.mark.slow
def test_attempt_gate_attention_after_training_is_a_distribution_away_from_uniform(trained):
    """What is reliably true of the gate on the toy world. That its attention goes to the designed
    related source is NOT asserted: measured, it does not (README, "What the CPU demo shows")."""
    folder = trained("attempt") / "attention"
    names = json.loads((folder / "prompts.json").read_text())["prompts"]
    assert sorted(names[:-1]) == sorted(SOURCES) and names[-1] == "target"
    weights = torch.tensor([json.loads(line)["weights"] for line in (folder / "test.jsonl").read_text().splitlines()])
    assert weights.shape == (50, len(names))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(50))
    mean = weights.mean(dim=0)
    assert (mean - 1 / len(names)).abs().max() > 0.1, dict(zip(names, mean.tolist()))


@pytest.mark.slow
def test_predict_on_the_trained_toy_run_gives_the_last_word(trained):
    run = attempt_dist.load_run(trained("finetune"), device="cpu")
    lists = ["dog sun red", "box lake river soup", "piano window garden", "bag glass table bridge forest",
             "park dog piano", "river red box"]
    got = run.predict([f"{TARGET} words: {words}" for words in lists], [TARGET] * len(lists))
    assert [g["prediction"] for g in got] == [words.split()[-1] for words in lists]
