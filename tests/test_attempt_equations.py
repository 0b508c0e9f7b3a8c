"""ATTEMPT's instance prompt against an independent, loop-by-loop computation of eqs. 3-4."""

import math

import pytest
import torch

from attempt_dist.methods.attempt import masked_max_pool
from tests.model_helpers import NUM_SOURCES, PROMPT_LENGTH, batch, wrap


def reference_instance_prompt(model, input_ids, attention_mask, task_id, K=1.0):
    """Eqs. 3-4 written out for one example, with explicit loops and no shared helpers."""
    emb = model.backbone.get_input_embeddings().weight.detach()
    tokens = [emb[t] for t, keep in zip(input_ids.tolist(), attention_mask.tolist()) if keep]
    d = emb.shape[1]
    x_hat = torch.stack(tokens).max(dim=0).values                          # max-pool, real tokens only
    gate = model.prompt.gate
    h_down = x_hat @ gate.down.weight.detach().T                          # W_down^T x
    h_up = torch.nn.functional.silu(h_down) @ gate.up.weight.detach().T   # W_up^T SiLU(.)
    mean, var = h_up.mean(), h_up.var(unbiased=False)
    h = (h_up - mean) / math.sqrt(var + gate.norm.eps) * gate.norm.weight.detach() + gate.norm.bias.detach()
    prompts = [model.prompt.sources[j].detach() for j in range(model.prompt.sources.shape[0])]
    prompts.append(model.prompt.target[task_id].detach())                 # P_{t+1} = P_target
    logits = [float(p.max(dim=0).values @ h) / (d * math.exp(K)) for p in prompts]
    z = sum(math.exp(v) for v in logits)
    a = [math.exp(v) / z for v in logits]                                  # eq. 3
    instance = model.prompt.target[task_id].detach().clone()
    for a_j, p_j in zip(a, prompts):                                       # eq. 4
        instance = instance + a_j * p_j
    return instance, torch.tensor(a)


def instance_prompts(model, b):
    embeds = model.backbone.get_input_embeddings()(b["input_ids"])
    with torch.no_grad():
        return model.prompt(embeds, b["attention_mask"], b["task_ids"])


@pytest.mark.parametrize("K", [1.0, 0.0, 2.5])
def test_instance_prompt_matches_equations_3_and_4(K):
    model, _ = wrap("attempt", num_tasks=2, temperature=K)
    with torch.no_grad():  # non-trivial gate weights so the test sees every term
        for p in model.prompt.gate.parameters():
            p.normal_(0, 1)
    b = batch(batch_size=4, num_tasks=2)
    got, weights = instance_prompts(model, b)
    for i in range(4):
        expected, a = reference_instance_prompt(model, b["input_ids"][i], b["attention_mask"][i],
                                                int(b["task_ids"][i]), K=K)
        torch.testing.assert_close(weights[i], a.float(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got[i], expected, rtol=1e-5, atol=1e-5)


def test_attention_sums_to_one_over_sources_and_target():
    model, _ = wrap("attempt", num_tasks=2)
    _, weights = instance_prompts(model, batch(batch_size=5, num_tasks=2))
    assert weights.shape == (5, NUM_SOURCES + 1)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5))
    assert (weights > 0).all()


def test_padding_never_changes_the_instance_prompt():
    model, _ = wrap("attempt")
    with torch.no_grad():  # make the pad embedding win any unmasked max-pool
        model.backbone.get_input_embeddings().weight[0].fill_(1e3)
    short = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
             "task_ids": torch.tensor([0])}
    padded = {"input_ids": torch.tensor([[5, 6, 7, 0, 0, 0]]),
              "attention_mask": torch.tensor([[1, 1, 1, 0, 0, 0]]), "task_ids": torch.tensor([0])}
    p_short, a_short = instance_prompts(model, short)
    p_padded, a_padded = instance_prompts(model, padded)
    torch.testing.assert_close(p_padded, p_short)
    torch.testing.assert_close(a_padded, a_short)


def test_masked_max_pool_ignores_padding_even_when_all_values_are_negative():
    embeds = torch.tensor([[[-3.0, -1.0], [-2.0, -5.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(masked_max_pool(embeds, mask), torch.tensor([[-2.0, -1.0]]))


def test_mixed_task_batch_uses_each_examples_own_target_prompt():
    model, _ = wrap("attempt", num_tasks=3)
    b = batch(batch_size=3, num_tasks=3)
    b["task_ids"] = torch.tensor([2, 0, 1])
    got, _ = instance_prompts(model, b)
    for i in range(3):
        single = {k: v[i:i + 1] for k, v in b.items()}
        alone, _ = instance_prompts(model, single)
        torch.testing.assert_close(got[i], alone[0])
    with torch.no_grad():
        model.prompt.target[0].add_(1.0)  # touching task 0's prompt moves only example 1
    moved, _ = instance_prompts(model, b)
    assert torch.equal(moved[0], got[0]) and torch.equal(moved[2], got[2])
    assert not torch.allclose(moved[1], got[1])


def test_ablation_no_target():
    model, _ = wrap("attempt", ablation="no_target")
    assert model.prompt.target is None
    b = batch(batch_size=2)
    got, weights = instance_prompts(model, b)
    assert weights.shape == (2, NUM_SOURCES)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    expected = torch.einsum("bt,tmd->bmd", weights, model.prompt.sources)
    torch.testing.assert_close(got, expected)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("prompt.gate.") for n in names)


def test_ablation_constant_attention():
    model, _ = wrap("attempt", ablation="constant_attention", num_tasks=2)
    assert model.prompt.gate is None
    b = batch(batch_size=2, num_tasks=2)
    got, weights = instance_prompts(model, b)
    torch.testing.assert_close(weights, torch.full((2, NUM_SOURCES), 1.0 / NUM_SOURCES))
    for i in range(2):
        expected = model.prompt.target[b["task_ids"][i]] + model.prompt.sources.mean(0)
        torch.testing.assert_close(got[i], expected.detach())
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"prompt.target"}


def test_ablation_single_prompt_keeps_the_named_source():
    model, _ = wrap("attempt", ablation="single_prompt", single_source="src2")
    from tests.model_helpers import source_prompts
    assert model.prompt.sources.shape == (1, PROMPT_LENGTH, model.config.d_model)
    torch.testing.assert_close(model.prompt.sources[0], source_prompts(model.config.d_model)[2])
    _, weights = instance_prompts(model, batch(batch_size=2))
    assert weights.shape == (2, 2)


def test_broken_scaling_would_be_caught():
    """The reference computation is sensitive to K: a model with another K disagrees."""
    model, _ = wrap("attempt", temperature=1.0)
    with torch.no_grad():
        for p in model.prompt.gate.parameters():
            p.normal_(0, 1)
        model.prompt.sources.mul_(50)
    b = batch(batch_size=1)
    got, _ = instance_prompts(model, b)
    wrong, _ = reference_instance_prompt(model, b["input_ids"][0], b["attention_mask"][0], 0, K=3.0)
    assert not torch.allclose(got[0], wrong, atol=1e-4)


def test_model_returns_attention_weights_for_figure_5():
    model, _ = wrap("attempt", num_tasks=2)
    out = model(**batch(num_tasks=2), return_attention=True)
    assert out["prompt_attention"].shape == (3, NUM_SOURCES + 1)
