"""The t5-tiny tokenizer: T5's special ids, <= 1024 pieces, exact round trips, reproducible."""

import json

import pytest

from attempt_dist.model.backbones import BACKBONES
from attempt_dist.data import load_tokenizer
from attempt_dist.errors import UserError
from attempt_dist.tasks import TASKS
from attempt_dist.model.tokenizer import TINY_PATH, tokenizer_source
from attempt_dist.model.tokenizer_build import build_tiny_vocab, fixture_texts, main as build_main
from tests.paths import DATA


def test_special_ids_match_the_tiny_backbone():
    tok = load_tokenizer("t5-tiny")
    assert (tok.pad_token, tok.pad_token_id) == ("<pad>", 0)
    assert (tok.eos_token, tok.eos_token_id) == ("</s>", 1)
    assert (tok.unk_token, tok.unk_token_id) == ("<unk>", 2)
    assert len(tok) <= 1024


@pytest.mark.parametrize("text", ["3.4", "not_entailment", "True", "option2", "Barack Obama, 1961!",
                                  "wsc text: * The trophy * did not fit"])
def test_round_trip_is_exact(text):
    tok = load_tokenizer("t5-tiny")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_every_label_word_round_trips():
    tok = load_tokenizer("t5-tiny")
    for task in TASKS.values():
        for word in task.label_words:
            assert tok.decode(tok(word, add_special_tokens=False)["input_ids"]) == word


def test_rebuilding_from_the_fixtures_gives_the_committed_vocabulary():
    committed = json.loads(TINY_PATH.read_text())["model"]["vocab"]
    assert build_tiny_vocab(fixture_texts(DATA)) == committed


def test_rebuild_command_writes_the_committed_file_byte_for_byte(tmp_path, capsys):
    out = tmp_path / "t5-tiny-tokenizer.json"
    assert build_main(["--rebuild", "--data-dir", str(DATA), "--out", str(out)]) == 0
    assert out.read_bytes() == TINY_PATH.read_bytes()


def test_unknown_model_offline_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no-such-model"):
        load_tokenizer("no-such-model")
    with pytest.raises(UserError):
        load_tokenizer(str(tmp_path))  # an empty folder is not a tokenizer


def test_a_hub_backbone_offline_names_the_prepare_command(monkeypatch):
    import transformers

    def offline(source, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(UserError, match=r"attempt-dist prepare --models t5-small --cache DIR` and set "
                                         r"ATTEMPT_DIST_PREPARED=DIR"):
        load_tokenizer("t5-small")


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_asks_for_its_registry_hub_id(name, monkeypatch):
    """The backbone registry is the only table of hub ids: the tokenizer of each entry is asked
    for under exactly the registry's id (no network: from_pretrained is replaced)."""
    import transformers

    asked = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        classmethod(lambda cls, source, *a, **k: asked.append(source) or "tokenizer"))
    spec = BACKBONES[name]
    tok = load_tokenizer(name)
    if spec.hub_id:
        assert asked == [spec.hub_id] and tok == "tokenizer"
    else:  # the random test backbones use the committed test tokenizer, never the hub
        assert asked == [] and len(tok) <= spec.vocab_size


def test_the_registry_covers_the_hub_ids_the_tokenizer_once_mistook():
    # Before the registry owned them, flan-t5 and the LM-adapted T5s were asked for under their
    # short names (e.g. "flan-t5-base"), which is no hub repository.
    assert tokenizer_source("flan-t5-base") == "google/flan-t5-base"
    assert tokenizer_source("t5-v1_1-xl-lm-adapt") == "google/t5-xl-lm-adapt"
    assert tokenizer_source("t5-small") == "google-t5/t5-small"
