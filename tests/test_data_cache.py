"""The tokenised-data cache: hit on identical inputs, miss on any change, never trusted when damaged."""

from attempt_dist.data import cached_tokenize, load_task_splits, load_tokenizer, tokenize_examples
from tests.train_helpers import DATA


class CountingTokenizer:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_second_call_reads_the_cache_and_equals_fresh_tokenisation(tmp_path):
    tok = CountingTokenizer(load_tokenizer("t5-tiny"))
    examples = load_task_splits("rte", DATA)["train"]
    first = cached_tokenize(examples, tok, 1, 64, 8, tmp_path)
    calls = tok.calls
    second = cached_tokenize(examples, tok, 1, 64, 8, tmp_path)
    assert tok.calls == calls  # no tokenisation the second time
    assert second == first == tokenize_examples(examples, tok.inner, 1, 64, 8)
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_any_change_is_a_new_entry(tmp_path):
    tok = load_tokenizer("t5-tiny")
    examples = load_task_splits("rte", DATA)["train"]
    cached_tokenize(examples, tok, 0, 64, 8, tmp_path)
    shorter = cached_tokenize(examples, tok, 0, 16, 8, tmp_path)
    assert max(len(f["input_ids"]) for f in shorter) <= 16
    examples[0].source += " changed"
    changed = cached_tokenize(examples, tok, 0, 64, 8, tmp_path)
    assert changed[0] == tokenize_examples(examples[:1], tok, 0, 64, 8)[0]
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_damaged_entry_is_rebuilt(tmp_path):
    tok = load_tokenizer("t5-tiny")
    examples = load_task_splits("cb", DATA)["dev"]
    expected = cached_tokenize(examples, tok, 0, 64, 8, tmp_path)
    (entry,) = tmp_path.glob("*.pt")
    entry.write_bytes(b"not a torch file")
    assert cached_tokenize(examples, tok, 0, 64, 8, tmp_path) == expected
