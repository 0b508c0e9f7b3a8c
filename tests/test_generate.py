"""`generate` through a prompted model equals a greedy decode done by hand with forward."""

import pytest
import torch

from tests.model_helpers import batch, wrap


def greedy_by_hand(model, input_ids, attention_mask, task_ids, steps):
    eos, start = model.config.eos_token_id, model.config.decoder_start_token_id
    decoded = torch.tensor([[start]])
    for _ in range(steps):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, task_ids=task_ids,
                       decoder_input_ids=decoded).logits[:, -1]
        nxt = logits.argmax(-1, keepdim=True)
        decoded = torch.cat([decoded, nxt], dim=1)
        if nxt.item() == eos:
            break
    return decoded[0].tolist()


@pytest.mark.parametrize("method", ["prompt", "attempt", "adapter", "bitfit"])
def test_generate_equals_hand_greedy_decode(method):
    model, _ = wrap(method, num_tasks=2)
    b = batch(batch_size=3, num_tasks=2)
    b["task_ids"] = torch.tensor([1, 0, 1])
    with torch.no_grad():
        generated = model.generate(b["input_ids"], b["attention_mask"], task_ids=b["task_ids"],
                                   max_new_tokens=6, do_sample=False, num_beams=1)
        for i in range(3):
            sl = slice(i, i + 1)
            expected = greedy_by_hand(model, b["input_ids"][sl], b["attention_mask"][sl],
                                      b["task_ids"][sl], steps=6)
            row = generated[i].tolist()[: len(expected)]
            assert row == expected, (i, row, expected)


def test_generate_depends_on_the_task_id():
    model, _ = wrap("prompt", num_tasks=2)
    with torch.no_grad():
        model.prompt.weight[1].normal_(0, 5)
        b = batch(batch_size=1)
        outs = [model.generate(b["input_ids"], b["attention_mask"], task_ids=torch.tensor([t]),
                               max_new_tokens=5, do_sample=False) for t in (0, 1)]
    assert outs[0].tolist() != outs[1].tolist()
