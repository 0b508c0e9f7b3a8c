"""Prompt libraries in safetensors (older .pt libraries still load) and formatting rows to predict on."""

import json

import pytest
import torch

from attempt_dist.data.files import read_rows
from attempt_dist.errors import UserError
from attempt_dist.methods.prompts import add_to_library, library_names, load_library, read_prompt, save_prompt
from attempt_dist.tasks import TASKS
from attempt_dist.tasks.formats import FORMATTERS, GOLD_PLACEHOLDERS, input_text
from tests.train_helpers import DATA


def test_library_prompts_are_safetensors_with_their_metadata(tmp_path):
    prompt = torch.randn(4, 32)
    file = add_to_library(tmp_path, prompt, task="mnli", backbone="t5-tiny", extra={"dev_score": 71.5})
    assert file.name == "mnli.safetensors"
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(file))["prompt"], prompt)  # readable by safetensors alone
    saved, meta = read_prompt(file)
    assert torch.equal(saved, prompt)
    assert meta == {"task": "mnli", "backbone": "t5-tiny", "d_model": 32, "prompt_length": 4, "dev_score": 71.5}
    assert json.loads((tmp_path / "library.json").read_text())["prompts"]["mnli"]["file"] == "mnli.safetensors"


def test_an_older_pt_library_still_loads_and_is_replaced_cleanly(tmp_path):
    old = torch.randn(4, 32)
    save_prompt(tmp_path / "sst2.pt", old, task="sst2", backbone="t5-tiny")
    (tmp_path / "library.json").write_text(json.dumps(
        {"backbone": "t5-tiny", "d_model": 32, "prompt_length": 4, "prompts": {"sst2": {"file": "sst2.pt"}}}))
    names, prompts = load_library(tmp_path, None, backbone="t5-tiny", d_model=32, prompt_length=4)
    assert names == ["sst2"] and torch.equal(prompts[0], old)
    new = torch.randn(4, 32)
    add_to_library(tmp_path, new, task="sst2", backbone="t5-tiny")  # retrained: the .pt is dropped
    assert not (tmp_path / "sst2.pt").exists() and library_names(tmp_path) == ["sst2"]
    assert torch.equal(load_library(tmp_path, ["sst2"], backbone="t5-tiny", d_model=32, prompt_length=4)[1][0], new)
    with pytest.raises(UserError, match="trained on 't5-tiny', not 't5-mini'"):
        load_library(tmp_path, None, backbone="t5-mini", d_model=32, prompt_length=4)


def test_every_formatter_has_gold_placeholders():
    assert set(GOLD_PLACEHOLDERS) == set(FORMATTERS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_rows_without_gold_format_as_training_formats_them(task):
    spec = TASKS[task]
    split = spec.hub_splits.get("eval") or spec.hub_splits.get("test") or spec.hub_splits["dev"]
    if spec.generator is not None:  # the toy family: generated in code, no files
        from attempt_dist.tasks.toy import generate_rows

        rows = list(generate_rows(spec.generator, split))[:5]
    else:
        folder = DATA / (task if (DATA / task).is_dir() else spec.name)
        files = sorted(folder.glob(f"{split}.*"))
        rows = [r for r in read_rows(files[0]).rows
                if spec.mrqa_subset is None or r.get("subset") == spec.mrqa_subset][:5]
    assert rows
    for row in rows:
        formatted = FORMATTERS[spec.formatter](spec, row)
        if not formatted:
            continue
        gold = {*GOLD_PLACEHOLDERS[spec.formatter], "idx"}
        stripped = {k: v for k, v in row.items() if k not in gold}
        assert input_text(spec, stripped) == formatted[0].source
