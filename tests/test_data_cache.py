"""The tokenised-data cache: hit on identical inputs, miss on any change, never trusted when
damaged, built once when two ranks ask at the same time, memory-mapped on every read."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from attempt_dist.data import cache as cache_module
from attempt_dist.data import load_task_splits, load_tokenizer, task_features, tokenize_examples
from tests.paths import REPO
from tests.train_helpers import DATA


class CountingTokenizer:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __len__(self):
        return len(self.inner)


def as_lists(features) -> list[dict]:
    return [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.items()} for f in features]


def entries(folder):
    return sorted(p for p in folder.iterdir() if p.is_dir())


def test_second_call_reads_the_cache_and_equals_fresh_tokenisation(tmp_path):
    tok = CountingTokenizer(load_tokenizer("t5-tiny"))
    first = task_features("rte", 1, DATA, 42, None, tok, 64, 8, tmp_path)
    calls = tok.calls
    second = task_features("rte", 1, DATA, 42, None, tok, 64, 8, tmp_path)
    assert first.built and not second.built
    assert tok.calls == calls > 0  # no tokenisation the second time
    splits = load_task_splits("rte", DATA, seed=42)
    for name in ("train", "dev", "test"):
        expected = tokenize_examples(splits[name], tok.inner, 1, 64, 8)
        assert as_lists(getattr(second, name)) == as_lists(getattr(first, name)) == expected
    assert second.test_examples == splits["test"]
    assert len(entries(tmp_path)) == 1


def test_a_warm_start_maps_the_arrays_and_reads_no_rows(tmp_path, monkeypatch):
    tok = load_tokenizer("t5-tiny")
    task_features("rte", 0, DATA, 42, None, tok, 64, 8, tmp_path)

    def no_loading(*args, **kwargs):
        raise AssertionError("a warm start loaded the rows")

    monkeypatch.setattr(cache_module, "load_task_splits", no_loading)
    warm = task_features("rte", 0, DATA, 42, None, tok, 64, 8, tmp_path)
    ids = warm.train.arrays["input_ids"]
    assert isinstance(ids, np.memmap) and not ids.flags.writeable
    assert warm.train.lengths.sum() == len(ids)


def test_any_change_is_a_new_entry(tmp_path):
    tok = load_tokenizer("t5-tiny")
    data = tmp_path / "data"
    shutil.copytree(DATA / "rte", data / "rte")
    cache = tmp_path / "cache"
    task_features("rte", 0, data, 42, None, tok, 64, 8, cache)
    shorter = task_features("rte", 0, data, 42, None, tok, 16, 8, cache)
    assert shorter.built and max(shorter.train.lengths) <= 16
    assert task_features("rte", 0, data, 7, None, tok, 64, 8, cache).built  # another dev/test split
    train = data / "rte" / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rows[0]["sentence1"] += " zzchanged"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    changed = task_features("rte", 0, data, 42, None, tok, 64, 8, cache)
    assert changed.built
    assert len(entries(cache)) == 4
    first = next(e for e in load_task_splits("rte", data)["train"] if "zzchanged" in e.source)
    assert any(f["index"] == first.index and f["input_ids"].tolist() == tokenize_examples([first], tok, 0, 64, 8)[0]["input_ids"]
               for f in changed.train)


@pytest.mark.parametrize("damage", ["truncated array", "no marker"])
def test_damaged_entry_is_rebuilt(tmp_path, damage):
    tok = load_tokenizer("t5-tiny")
    expected = as_lists(task_features("cb", 0, DATA, 42, None, tok, 64, 8, tmp_path).dev)
    (entry,) = entries(tmp_path)
    if damage == "truncated array":
        array = entry / "dev.input_ids.npy"
        array.write_bytes(array.read_bytes()[:-8])
    else:
        (entry / cache_module.DONE_FILENAME).unlink()
    again = task_features("cb", 0, DATA, 42, None, tok, 64, 8, tmp_path)
    assert again.built and as_lists(again.dev) == expected


# Two "ranks" as two processes asking for the same entry at once; the first tokenizer call
# sleeps, so the second process surely arrives while the first is still building.
RANK_SCRIPT = """
import sys, time
from attempt_dist.data import load_tokenizer, task_features
inner = load_tokenizer("t5-tiny")
calls = []
class Slow:
    def __call__(self, *a, **k):
        time.sleep(0 if calls else 1.5); calls.append(1); return inner(*a, **k)
    def __getattr__(self, name):
        return getattr(inner, name)
    def __len__(self):
        return len(inner)
data = task_features("rte", 0, sys.argv[1], 42, None, Slow(), 64, 8, sys.argv[2])
print(len(calls), len(data.train), flush=True)
"""


def test_two_ranks_tokenise_once(tmp_path):
    env_cmd = [sys.executable, "-c", RANK_SCRIPT, str(DATA), str(tmp_path)]
    procs = [subprocess.Popen(env_cmd, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    calls = sorted(int(out[0]) for out in outputs)
    assert calls[0] == 0 and calls[1] > 0  # one process tokenised, the other waited and mapped
    assert outputs[0][1] == outputs[1][1] == str(len(load_task_splits("rte", DATA)["train"]))
    assert len(entries(tmp_path)) == 1


def test_token_ids_are_stored_as_uint16_when_the_vocabulary_fits(tmp_path):
    """T5's vocabulary fits in uint16: the cache holds half the bytes of int32, and the features
    read back equal fresh tokenisation; a vocabulary past 65536 ids keeps int32."""
    from attempt_dist.data.token_arrays import token_dtype

    tok = load_tokenizer("t5-tiny")
    data = task_features("rte", 0, DATA, 42, None, tok, 64, 8, tmp_path)
    (entry,) = entries(tmp_path)
    for name in ("input_ids", "labels"):
        assert np.load(entry / f"train.{name}.npy", mmap_mode="r").dtype == np.uint16
    expected = tokenize_examples(load_task_splits("rte", DATA, seed=42)["train"], tok, 0, 64, 8)
    assert as_lists(data.train) == expected

    class BigVocabulary:
        def __len__(self):
            return 65537

    assert token_dtype(BigVocabulary()) == np.int32 and token_dtype(tok) == np.uint16
