"""The backbone registry and its three build modes."""

import pytest
import torch

from attempt_dist.model.backbones import BACKBONES, build_backbone, get_spec
from attempt_dist.errors import UserError


@pytest.mark.parametrize("name, total", [
    ("t5-small", 60_506_624), ("t5-base", 222_903_552), ("t5-large", 737_668_096),
    ("t5-3b", 2_851_598_336), ("t5-11b", 11_307_321_344),
])
def test_meta_build_counts_exact_totals_with_tied_embeddings(name, total):
    model = build_backbone(name, "meta")
    assert next(model.parameters()).device.type == "meta"
    assert sum(p.numel() for p in model.parameters()) == total


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown backbone 't5-xxl'; known backbones: t5-small, t5-base"):
        get_spec("t5-xxl")


def test_pretrained_from_a_local_folder_round_trips(tmp_path):
    model = build_backbone("t5-tiny", "random", seed=3)
    model.save_pretrained(tmp_path)
    loaded = build_backbone("t5-tiny", "pretrained", path=tmp_path)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    half = build_backbone("t5-tiny", "pretrained", path=tmp_path, dtype=torch.bfloat16)
    assert next(half.parameters()).dtype == torch.bfloat16


def test_pretrained_offline_without_a_copy_says_what_it_needs(tmp_path):
    with pytest.raises(UserError, match="cannot load pretrained t5-small from"):
        build_backbone("t5-small", "pretrained", path=tmp_path / "missing")


def test_registry_covers_the_paper_family():
    for name in ("t5-small", "t5-base", "t5-large", "t5-3b", "t5-11b", "t5-tiny"):
        assert name in BACKBONES
