"""ds_configs/*.json and load_ds_config: every shipped config parses, fills, and DeepSpeed accepts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attempt_dist import distributed as dist
from attempt_dist.errors import UserError
from tests.paths import REPO

NAMES = ["zero0", "zero2_offload", "zero3_nvme", "zero3_offload"]


def _has_auto(value) -> bool:
    if isinstance(value, dict):
        return any(_has_auto(v) for v in value.values())
    return value == "auto"


def test_configs_are_package_data_and_the_repo_folder_links_to_them():
    """One copy: attempt_dist/ds_configs/*.json ships in the package (pyproject package-data),
    and the repository's ds_configs/ is that folder."""
    package = REPO / "attempt_dist" / "ds_configs"
    assert sorted(p.stem for p in package.glob("*.json")) == NAMES == dist.shipped_config_names()
    assert (REPO / "ds_configs").resolve() == package.resolve()
    assert '"ds_configs/*.json"' in (REPO / "pyproject.toml").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_shipped_config_fills_and_deepspeed_accepts_it(name):
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = dist.load_ds_config(name, micro_batch_size=4, grad_accum=2, world_size=3, nvme_path="/scratch/x")
    assert not _has_auto(cfg)
    assert not any(k.startswith("_comment") for k in cfg)
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["train_batch_size"]) == (4, 2, 24)
    assert cfg["gradient_clipping"] == 1.0
    assert cfg["bf16"]["enabled"] is torch.cuda.is_available()
    assert "optimizer" not in cfg and "scheduler" not in cfg  # the recipe's AdamW carries the LRs
    if "offload_optimizer" in cfg["zero_optimization"]:
        assert cfg["zero_force_ds_cpu_optimizer"] is False  # else DeepSpeed rejects a torch AdamW
    # DeepSpeed's own parser checks train_batch_size against the world size it sees (1 here).
    one_rank = dist.load_ds_config(name, micro_batch_size=4, grad_accum=2, world_size=1, nvme_path="/scratch/x")
    parsed = DeepSpeedConfig(one_rank)
    assert parsed.zero_optimization_stage == dist.zero_stage(cfg) == int(name[4])
    assert parsed.train_batch_size == 8


def test_nvme_path_is_required_and_filled():
    with pytest.raises(UserError, match="--nvme-path"):
        dist.load_ds_config("zero3_nvme", micro_batch_size=1, grad_accum=1, world_size=1)
    cfg = dist.load_ds_config("zero3_nvme", micro_batch_size=1, grad_accum=1, world_size=1, nvme_path=Path("/nvme/a"))
    zero = cfg["zero_optimization"]
    assert zero["offload_param"]["nvme_path"] == zero["offload_optimizer"]["nvme_path"] == "/nvme/a"


def test_unknown_config_lists_the_shipped_ones():
    with pytest.raises(UserError) as err:
        dist.load_ds_config("zero9", micro_batch_size=1, grad_accum=1, world_size=1)
    message = str(err.value)
    assert "'zero9'" in message and all(n in message for n in NAMES) and "\n" not in message


def test_names_resolve_to_the_package_folder_from_any_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # an installed package: no repository folder around
    cfg = dist.load_ds_config("zero3_offload", micro_batch_size=2, grad_accum=1, world_size=2)
    assert cfg["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert cfg["train_batch_size"] == 4


def test_explicit_values_must_agree_with_the_command_line(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}}))
    assert dist.load_ds_config(path, micro_batch_size=4, grad_accum=1, world_size=2)["train_batch_size"] == 8
    with pytest.raises(UserError, match="train_micro_batch_size_per_gpu=4 .* gives 8"):
        dist.load_ds_config(path, micro_batch_size=8, grad_accum=1, world_size=2)


def test_overrides_merge_deeply_and_input_dict_is_untouched():
    base = dist.shipped_config("zero3_offload")
    cfg = dist.load_ds_config(base, micro_batch_size=1, grad_accum=1, world_size=1,
                              overrides={"zero_optimization": {"stage3_param_persistence_threshold": 0}})
    assert cfg["zero_optimization"]["stage3_param_persistence_threshold"] == 0
    assert cfg["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert base == dist.shipped_config("zero3_offload")


@pytest.mark.parametrize(
    "content,match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}}', "zero_optimization.reduce_bucket_size"),
        ('{"zero_optimization": {"stage": 5}}', "stage must be"),
        ('{"fp16": {"enabled": true}}', "fp16"),
        ('{"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}', "stage 3"),
    ],
)
def test_bad_files_are_user_errors(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=match):
        dist.load_ds_config(path, micro_batch_size=1, grad_accum=1, world_size=1)


@pytest.mark.parametrize("field", ["micro_batch_size", "grad_accum", "world_size"])
def test_sizes_must_be_positive(field):
    sizes = {"micro_batch_size": 1, "grad_accum": 1, "world_size": 1, field: 0}
    with pytest.raises(UserError, match=field):
        dist.load_ds_config("zero0", **sizes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only rule")
def test_bf16_on_a_cpu_machine_is_refused():
    with pytest.raises(UserError, match="bf16"):
        dist.load_ds_config("zero0", micro_batch_size=1, grad_accum=1, world_size=1, use_bf16=True)
    cfg = dist.load_ds_config("zero0", micro_batch_size=1, grad_accum=1, world_size=1, use_bf16=False)
    assert cfg["bf16"]["enabled"] is False


def test_zero_stage():
    assert dist.zero_stage({}) == 0
    assert dist.zero_stage({"zero_optimization": {"stage": 3}}) == 3
    with pytest.raises(UserError):
        dist.zero_stage({"zero_optimization": {"stage": "3"}})
