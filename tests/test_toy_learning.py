"""t5-toy ships, loads offline and knows its source skills; pretraining is byte-identical on
re-run. Learning on the toy targets, method by method: tests/test_toy_methods.py."""

import hashlib

import pytest
import torch

from attempt_dist.model.backbones import ASSETS, build_backbone, get_spec
from attempt_dist.toy import pretrain

WEIGHTS = ASSETS / "t5-toy" / "model.safetensors"


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
