"""Trainable parameter counts, counted from modules built on the meta device."""

import json

import pytest

from attempt_dist.model.backbones import get_spec
from attempt_dist.cli import main
from attempt_dist.model.params import count_trainable


@pytest.mark.parametrize("model, method, expected", [
    ("t5-small", "finetune", 60_506_624),
    ("t5-base", "finetune", 222_903_552),
    ("t5-large", "finetune", 737_668_096),
    ("t5-3b", "finetune", 2_851_598_336),
    ("t5-11b", "finetune", 11_307_321_344),
    ("t5-base", "prompt", 76_800),
    ("t5-base", "spot", 76_800),
    ("t5-base", "attempt", 231_936),
    # 48 Houlsby adapters (self-attention + feed-forward, encoder + decoder), d=768, r=24:
    ("t5-base", "adapter", 48 * (768 * 24 + 24 + 24 * 768 + 768)),
    # biases on every linear (incl. lm_head) + LayerNorm scales.
    ("t5-base", "bitfit", 282_496),
])
def test_exact_counts(model, method, expected):
    assert count_trainable(model, method).trainable == expected


def test_paper_ballparks():
    assert abs(count_trainable("t5-base", "adapter").trainable - 1.8e6) < 0.02 * 1.8e6
    assert abs(count_trainable("t5-base", "bitfit").trainable - 280e3) < 0.02 * 280e3


@pytest.mark.parametrize("model", ["t5-small", "t5-base", "t5-large", "t5-3b"])
@pytest.mark.parametrize("num_tasks", [1, 4, 7])
def test_attempt_mt_matches_section_6_2(model, num_tasks):
    d, m, r = get_spec(model).d_model, 100, 100
    count = count_trainable(model, "attempt", num_tasks=num_tasks)
    assert count.trainable == num_tasks * m * d + 2 * r * d + 2 * d
    assert count.per_task == pytest.approx(d * (m + 2 * (r + 1) / num_tasks))


def test_prompt_length_and_bottleneck_options():
    assert count_trainable("t5-small", "attempt", prompt_length=10, bottleneck=7).trainable == \
        10 * 512 + 2 * 7 * 512 + 2 * 512


def test_cli_json_has_the_exact_numbers(capsys):
    assert main(["params", "--models", "t5-small,t5-base", "--methods", "finetune,prompt,attempt",
                 "--json"]) == 0
    rows = {(r["model"], r["method"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("t5-small", "finetune")]["trainable"] == 60_506_624
    assert rows[("t5-base", "prompt")]["per_task"] == 76_800
    assert rows[("t5-base", "attempt")]["trainable"] == 231_936


def test_cli_csv(capsys):
    assert main(["params", "--models", "t5-base", "--methods", "prompt", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model,method,num_tasks,trainable")
    assert lines[1].startswith("t5-base,prompt,1,76800")


@pytest.mark.parametrize("argv, message", [
    (["params", "--models", "t5-huge"], "unknown backbone 't5-huge'; known backbones: t5-small"),
    (["params", "--methods", "nonesuch"], "unknown method 'nonesuch'; known methods: finetune"),
    (["params", "--prompt-length", "0"], "prompt_length must be a positive integer"),
    (["params", "--rank", "-3", "--methods", "attempt"], "bottleneck must be a positive integer"),
    (["params", "--num-tasks", "0", "--methods", "attempt"], "N must be at least 1"),
    (["params", "--num-tasks", "two"], "--num-tasks takes comma-separated integers"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_cli_counts_spot_mt_as_one_shared_prompt(capsys):
    """Tables 2-3's SPoT MT rows: one prompt for the group, 77k / 4 = 19k per task (issue 19)."""
    assert main(["params", "--models", "t5-base", "--methods", "spot", "--num-tasks", "1,4", "--json"]) == 0
    rows = {r["num_tasks"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[1]["per_task"] == 76_800 and rows[4]["trainable"] == 76_800 and rows[4]["per_task"] == 19_200


def test_a_named_source_counts_like_any_other(monkeypatch):
    # Counting builds on a stand-in library of unnamed sources; a run or sweep cell that names
    # its source (SPoT-g copying mnli, the single_prompt ablation keeping it) counted nothing.
    monkeypatch.setenv("ATTEMPT_DIST_SHAPE_CACHE", "off")
    assert count_trainable("t5-tiny", "spot", spot_source="mnli") == count_trainable("t5-tiny", "spot")
    single = count_trainable("t5-tiny", "attempt", ablation="single_prompt", single_source="mnli")
    assert single == count_trainable("t5-tiny", "attempt", ablation="single_prompt")
    assert single.trainable == count_trainable("t5-tiny", "attempt").trainable  # its sources are frozen anyway
