"""Tests only learning can pass: t5-toy ships, loads offline and knows its source skills; a run
on a toy target rises well above chance within a stated number of steps; predict on that run
gives the expected answers; pretraining is byte-identical on re-run."""

import hashlib

import pytest
import torch

import attempt_dist
from attempt_dist.model.backbones import ASSETS, build_backbone, get_spec
from attempt_dist.finished.record import read_record
from attempt_dist.toy import pretrain

from tests.train_helpers import launch

WEIGHTS = ASSETS / "t5-toy" / "model.safetensors"
# The toy runs' shared options: short inputs and answers, no dropout, no checkpoints to write.
TOY = ["--model", "t5-toy", "--ds-config", "zero0", "--batch-size", "16", "--max-length", "32",
       "--max-target-length", "8", "--max-eval-examples", "50", "--warmup-steps", "10",
       "--dropout", "0", "--save-every", "1000"]
# toy_person: pick the person out of (city, person). Chance for a model that copies one of the
# two names is 50% exact match; fine-tuning t5-toy reached 100% at step 40 (measured, lr 1e-3,
# batch 16). The test asks for 80% after 40 steps: 30 points above chance.
STEPS, CHANCE, MARGIN = 40, 50.0, 30.0


def test_t5_toy_ships_small_and_loads_offline_as_pretrained():
    assert WEIGHTS.stat().st_size < 20 * 2**20
    assert (ASSETS / "t5-toy" / "README.md").read_text().startswith("# t5-toy")
    model = build_backbone("t5-toy", "pretrained")
    random = build_backbone("t5-toy", "random", seed=0)
    assert model.config.d_model == get_spec("t5-toy").d_model
    shipped = model.shared.weight
    assert not torch.equal(shipped, random.shared.weight)
    from safetensors.torch import load_file

    assert torch.equal(shipped, load_file(WEIGHTS)["shared.weight"])


def test_t5_toy_knows_the_category_skill_it_was_pretrained_on():
    from attempt_dist.model.tokenizer import load_tokenizer

    model = build_backbone("t5-toy", "pretrained").eval()
    tokenizer = load_tokenizer("t5-toy")
    names = {"paris": "city", "oslo": "city", "lena": "person", "omar": "person"}
    ids = [tokenizer(f"toy_category name: {n}", add_special_tokens=False).input_ids + [1] for n in names]
    batch = torch.tensor(ids)  # every input is the same length: no padding needed
    out = model.generate(input_ids=batch, max_new_tokens=4, do_sample=False, num_beams=1)
    assert tokenizer.batch_decode(out, skip_special_tokens=True) == list(names.values())


@pytest.fixture(scope="module")
def person_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "ft-person"
    launch([*TOY, "--method", "finetune", "--lr", "1e-3", "--tasks", "toy_person",
            "--max-steps", str(STEPS), "--eval-every", str(STEPS), "--output-dir", str(out)])
    return out


@pytest.mark.slow
def test_finetuning_rises_above_chance_on_a_toy_target(person_run):
    record = read_record(person_run / "result.json")
    assert record.metrics["dev"]["toy_person"]["em"] >= CHANCE + MARGIN


@pytest.mark.slow
def test_predict_on_the_trained_toy_run_gives_the_person(person_run):
    run = attempt_dist.load_run(person_run, device="cpu")
    pairs = {"paris lena": "lena", "omar kyoto": "omar", "lima grace": "grace", "hiro dublin": "hiro",
             "oslo nadia": "nadia", "bruno perth": "bruno"}
    got = run.predict([f"toy_person names: {p}" for p in pairs], ["toy_person"] * len(pairs))
    right = [g["prediction"] == want for g, want in zip(got, pairs.values())]
    # mostly right, as the dev score promises (a 30-step run once answered "elena" for "lima grace")
    assert sum(right) >= 5, [g["prediction"] for g in got]


@pytest.mark.slow
def test_pretraining_gives_byte_identical_weights_on_rerun(tmp_path):
    digests = []
    for name in ("a", "b"):
        pretrain.main(["--steps", "3", "--threads", "1", "--output-dir", str(tmp_path / name)])
        digests.append(hashlib.sha256((tmp_path / name / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    other = tmp_path / "seed1"
    pretrain.main(["--steps", "3", "--threads", "1", "--seed", "1", "--output-dir", str(other)])
    assert hashlib.sha256((other / "model.safetensors").read_bytes()).hexdigest() != digests[0]
    card = (tmp_path / "a" / "README.md").read_text()
    assert "--steps 3" in card and "--seed 0" in card
