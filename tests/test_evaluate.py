"""Evaluation scores every task with its own prompt and its own metric."""

import pytest
import torch

from attempt_dist.data import Seq2SeqCollator, load_task_splits, load_tokenizer, tokenize_examples
from attempt_dist.distributed import DistInfo
from attempt_dist.training.evaluate import TaskEvalData, _shard, evaluate, max_new_tokens
from tests.model_helpers import wrap
from tests.train_helpers import DATA

ONE_RANK = DistInfo(rank=0, local_rank=0, world_size=1, is_main=True)


def eval_data(tokenizer, tasks=("rte", "cb"), n=6):
    data = []
    for task_id, task in enumerate(tasks):
        examples = load_task_splits(task, DATA)["dev"][:n]
        data.append(TaskEvalData(task, task_id, examples, tokenize_examples(examples, tokenizer, task_id, 64, 8)))
    return data


def generate_all(model, data, tokenizer, task_id):
    collator = Seq2SeqCollator(tokenizer.pad_token_id)
    batch = collator(data.features)
    out = model.generate(batch["input_ids"], batch["attention_mask"], task_ids=torch.full_like(batch["task_ids"], task_id),
                         max_new_tokens=max_new_tokens(data.task, 8, tokenizer), do_sample=False)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


def test_each_task_is_scored_with_its_own_prompt():
    tokenizer = load_tokenizer("t5-tiny")
    model, _ = wrap("prompt", num_tasks=2)
    model.eval()  # evaluate() puts a training model back in training mode afterwards
    with torch.no_grad():
        model.prompt.weight[1].normal_(0, 10)  # task 1's prompt steers generation elsewhere
    data = eval_data(tokenizer)
    result = evaluate(model, data, split="dev", tokenizer=tokenizer, collator=Seq2SeqCollator(0),
                      batch_size=4, info=ONE_RANK, max_target_length=8, synced_gpus=False)
    for d in data:
        own = generate_all(model, d, tokenizer, d.task_id)
        assert result["predictions"][d.task] == own
    first_prompt = generate_all(model, data[1], tokenizer, 0)
    assert first_prompt != result["predictions"]["cb"], "test needs prompts that change the output"
    assert set(result["metrics"]["rte"]) == {"accuracy"}
    assert set(result["metrics"]["cb"]) == {"accuracy", "f1_macro"}


def test_attention_weights_come_back_per_instance():
    tokenizer = load_tokenizer("t5-tiny")
    model, _ = wrap("attempt", num_tasks=2)
    data = eval_data(tokenizer, n=3)
    result = evaluate(model, data, split="test", tokenizer=tokenizer, collator=Seq2SeqCollator(0), batch_size=2,
                      info=ONE_RANK, max_target_length=8, synced_gpus=False, with_attention=True)
    for d in data:
        weights = result["attention"][d.task]
        assert len(weights) == 3 and all(len(w) == 4 and sum(w) == pytest.approx(1.0, abs=1e-5) for w in weights)


@pytest.mark.parametrize("n, world", [(7, 2), (8, 2), (1, 2), (5, 3)])
def test_eval_shards_cover_everything_with_equal_lengths(n, world):
    shards = [_shard(n, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of generate calls
    assert sorted(set(i for s in shards for i in s)) == list(range(n))


def test_label_tasks_decode_at_most_their_longest_target_plus_eos():
    from attempt_dist.tasks import get_task

    tokenizer = load_tokenizer("t5-tiny")
    lengths = lambda words: [len(ids) for ids in tokenizer(list(words), add_special_tokens=False)["input_ids"]]  # noqa: E731
    for task in ("rte", "cb", "boolq", "multirc", "copa", "wsc", "stsb"):
        budget = max_new_tokens(task, 128, tokenizer)
        # Every training target of the example data fits, eos included (labels end in eos) ...
        for split in ("train", "dev"):
            examples = load_task_splits(task, DATA)[split]
            feats = tokenize_examples(examples, tokenizer, 0, 64, 128)
            assert max(len(f["labels"]) for f in feats) <= budget, task
        # ... and the budget is exactly the longest possible target plus eos, far below the old 16.
        if get_task(task).kind == "classification":
            assert budget == max(lengths(get_task(task).label_words)) + 1, task
    assert max_new_tokens("cb", 2, tokenizer) == 2  # never past --max-target-length
    assert max_new_tokens("squad", 128, tokenizer) == 128  # QA answers keep the whole budget
