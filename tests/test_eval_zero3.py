"""Evaluation without per-token ZeRO-3 gathers: same results, sorted batches, the fit rule.

The 2-rank case runs tests/dist_scripts/eval_zero3.py through the deepspeed launcher on the
real recipe (t5-tiny ATTEMPT, rte + cb, zero3_offload) and compares, on every rank, the
gather-once evaluation with today's per-step path and with unsorted batches.
"""

from __future__ import annotations

import pytest
import torch

from attempt_dist.data import Seq2SeqCollator, load_tokenizer
from attempt_dist.distributed import engine as ds_engine
from attempt_dist.training.evaluate import default_eval_batch_size, evaluate, length_order
from tests.test_evaluate import ONE_RANK, eval_data
from tests.train_helpers import REPO, TINY, launch, make_library

SCRIPT = REPO / "tests" / "dist_scripts" / "eval_zero3.py"

SCRIPT_ARGS = [*TINY, "--eval-batch-size", "2", "--max-eval-examples", "8",  # after TINY's 2: the later flag wins
               "--method", "attempt", "--tasks", "rte,cb", "--ds-config", "zero3_offload", "--dropout", "0",
               "--warmup-steps", "0"]


@pytest.mark.slow
def test_two_rank_zero3_gather_once_equals_per_step_gathers(tmp_path):
    lib = make_library(tmp_path / "lib")
    launch(["--out", str(tmp_path / "out"), "--", *SCRIPT_ARGS, "--source-prompts", str(lib),
            "--output-dir", str(tmp_path / "run")], launcher="deepspeed", ranks=2, script=SCRIPT, timeout=240)
    records = [torch.load(tmp_path / "out" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for rec in records:
        assert rec["stage"] == 3 and rec["world_size"] == 2 and rec["gathered_ranks"] == [0, 1]
        assert rec["gathered"], "the tiny backbone fits: evaluation should have gathered it once"
        once, per_step = rec["once"], rec["per_step"]
        words = [p for preds in once["predictions"].values() for p in preds]
        assert len(set(words)) > 3, f"the test needs varied predictions, got {words}"
        assert once["predictions"] == per_step["predictions"]
        assert once["metrics"] == per_step["metrics"] and once["score"] == per_step["score"]
        assert once["attention"] == per_step["attention"]
        assert rec["unsorted"]["predictions"] == once["predictions"]
        assert rec["unsorted"]["attention"] == once["attention"]
        # No ZeRO-3 fetch inside the gathered block; the per-step path fetches every module at
        # every decoding step; training after it fetches again (the hooks are back).
        assert rec["fetches"]["once"] == 0 and rec["fetches"]["uneven"] == 0
        # (a label task decodes at most its longest label plus eos: a handful of steps, each fetching all)
        assert rec["fetches"]["per_step"] > 5 * rec["fetches"]["train_step"] > 0
        assert rec["hooks_after"] == rec["hooks_before"] and rec["hooks_before"][0] > 0
        assert rec["released"], "parameters left gathered after evaluation"
        assert rec["loss_after"] == rec["loss_before"]
        assert all(rec["moved"]), "the training step after evaluation did not move the trainable parameters"
        # Ranks generated different lengths with synced_gpus=False and nobody hung.
        assert rec["generated"].shape == (2, 1 + rec["new_tokens"])
    assert records[0]["new_tokens"] != records[1]["new_tokens"]
    assert records[0]["once"] == records[1]["once"]


class _CountingCollator(Seq2SeqCollator):
    def __init__(self):
        super().__init__(0)
        self.padding = 0

    def __call__(self, features):
        longest = max(len(f["input_ids"]) for f in features)
        self.padding += sum(longest - len(f["input_ids"]) for f in features)
        return super().__call__(features)


def test_sorted_batches_pad_less_and_predict_the_same():
    from tests.model_helpers import wrap

    tokenizer = load_tokenizer("t5-tiny")
    model, _ = wrap("attempt", num_tasks=2)
    with torch.no_grad():  # a random tiny T5 says nothing; larger weights make it talk
        for p in model.backbone.parameters():
            p.mul_(3)
    data = eval_data(tokenizer, n=8)
    runs = {}
    for sort in (True, False):
        collator = _CountingCollator()
        runs[sort] = (evaluate(model, data, split="dev", tokenizer=tokenizer, collator=collator, batch_size=3,
                               info=ONE_RANK, max_target_length=8, synced_gpus=False, with_attention=True,
                               sort_by_length=sort), collator.padding)
    (srt, srt_pad), (plain, plain_pad) = runs[True], runs[False]
    words = [p for preds in srt["predictions"].values() for p in preds]
    assert len(set(words)) > 3, f"the test needs varied predictions, got {words}"
    assert srt["predictions"] == plain["predictions"]
    assert srt["metrics"] == plain["metrics"]
    for task in srt["attention"]:
        torch.testing.assert_close(torch.tensor(srt["attention"][task]), torch.tensor(plain["attention"][task]))
    assert srt_pad < plain_pad


def test_length_order_is_longest_first_and_stable():
    feats = [{"input_ids": [1] * n} for n in (3, 5, 3, 7, 5)]
    assert length_order(feats) == [3, 1, 4, 0, 2]


def test_default_eval_batch_is_twice_the_train_batch():
    assert default_eval_batch_size(16) == 32


class _FakeCuda:
    def __init__(self, total, allocated):
        self.total, self.allocated = total, allocated

    def is_available(self):
        return True

    def current_device(self):
        return 0

    def get_device_properties(self, device):
        return type("Props", (), {"total_memory": self.total})()

    def memory_allocated(self):
        return self.allocated


GiB = 2**30


@pytest.mark.parametrize("param_gib, allocated_gib, cap_gib, total_gib, fits", [
    (5.3, 0.5, 24, 80, True),      # t5-3b in bf16 under a 24 GiB cap
    (21.1, 0.5, 24, 80, False),    # t5-11b in bf16: the margin (a fifth of the cap) is gone
    (5.3, 14.0, 24, 80, False),    # the allocator already holds most of the cap
    (5.3, 0.5, None, 7, False),    # no cap: the card's own size is the limit (less a 2 GiB margin)
    (5.3, 0.5, None, 80, True),
])
def test_gather_fits_rule(monkeypatch, param_gib, allocated_gib, cap_gib, total_gib, fits):
    monkeypatch.setattr(torch, "cuda", _FakeCuda(total_gib * GiB, int(allocated_gib * GiB)))
    module = torch.nn.Linear(1, 1, bias=False)
    module.weight.ds_numel = int(param_gib * GiB / 2)  # a bf16 ZeRO-3 shard reports its whole size
    module.weight.data = module.weight.data.to(torch.bfloat16)
    cap = cap_gib * GiB if cap_gib else None
    assert ds_engine.generation_gather_fits(module, cap) is fits


def test_gather_fits_on_the_cpu_whatever_the_cap():
    module = torch.nn.Linear(4, 4)
    module.weight.ds_numel = 10**12
    assert ds_engine.generation_gather_fits(module, 1 << 30)


def test_plain_module_or_other_stages_pass_through():
    class NoZero3:
        optimizer = object()

    with ds_engine.gathered_for_generation(NoZero3()) as whole:
        assert whole is False


def test_benchmark_rows_and_medians():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import eval_zero3 as bench

    def record(dev_s, wall):
        return {"wall_time_s": wall, "score": {"dev": 0.0}, "metrics": {"test": {}},
                "throughput": {"examples": 1280, "train_examples_per_s": 32.0,
                               "eval": {"dev": {"seconds": dev_s, "calls": 11}, "test": {"seconds": 1.0, "calls": 1}}}}

    rows = [bench.row_from(record(d, w), v, repeat, w + 10) for repeat, v, d, w in
            [(0, "gather-once", 10.0, 60.0), (0, "per-step", 40.0, 90.0), (1, "gather-once", 12.0, 62.0),
             (1, "per-step", 44.0, 94.0)]]
    rows.append({"variant": "before", "repeat": 0, "error": "exit 1"})
    assert rows[0]["train_s"] == 40.0 and rows[0]["dev_eval_share"] == round(10 / 60, 3)
    summary = {m["variant"]: m for m in bench.medians(rows)}
    assert summary["gather-once"]["dev_eval_s"] == 11.0 and summary["per-step"]["dev_eval_s"] == 42.0
    assert summary["before"]["runs"] == 0 and summary["before"]["dev_eval_s"] is None
    text = bench.markdown({"title": "t", "date": "d", "machine": {"description": "m"}, "versions": {},
                           "command": "c", "run_command": "r", "repeats": 2, "medians": bench.medians(rows),
                           "notes": ["n"]})
    assert "| per-step | 2 |" in text and "11.0 (10.0-12.0)" in text
    assert summary["per-step"]["dev_eval_s_vs_gather_once"] == round((40 / 10 + 44 / 12) / 2, 2)
    assert summary["gather-once"]["command_s_vs_gather_once"] == 1.0
