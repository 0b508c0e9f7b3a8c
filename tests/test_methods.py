"""Every method trains exactly its intended parameters and leaves the rest bit-identical."""

import re

import pytest
import torch

from attempt_dist.model.backbones import build_backbone
from attempt_dist.errors import UserError
from attempt_dist.methods import MethodInputs, apply_method, make_config, param_groups
from tests.model_helpers import batch, wrap

# Which parameter names each method must train (and nothing else).
INTENDED = {
    "finetune": r".*",
    "bitfit": r".*(\.bias|layer_norm\.weight)$",
    "adapter": r".*\.adapter\.(down|up)\.(weight|bias)$",
    "prompt": r"prompt\.weight$",
    "spot": r"prompt\.weight$",
    "attempt": r"prompt\.(target|gate\.(down|up|norm)\.\w+)$",
}


def _train(model, cfg, method, steps=3, num_tasks=2):
    optimizer = torch.optim.AdamW(param_groups(method, model, cfg))
    for step in range(steps):
        optimizer.zero_grad()
        loss = model(**batch(seed=step, num_tasks=num_tasks)).loss
        loss.backward()
        optimizer.step()
    return loss


@pytest.mark.parametrize("method", list(INTENDED))
def test_only_intended_parameters_train(method):
    model, cfg = wrap(method, num_tasks=2)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    assert names and all(re.match(INTENDED[method], n) for n in names), sorted(names)
    if method != "finetune":
        assert frozen, "a parameter-efficient method must leave the backbone frozen"
    grouped = {id(p) for g in param_groups(method, model, cfg) for p in g["params"]}
    assert grouped == {id(p) for n, p in model.named_parameters() if n in names}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n in names}

    _train(model, cfg, method)

    for name, param in model.named_parameters():
        if name in frozen:
            assert param.grad is None, name
            assert torch.equal(param, frozen[name]), f"frozen {name} changed"
    for name, value in buffers.items():  # ATTEMPT's source prompts are buffers: untouched
        assert torch.equal(dict(model.named_buffers())[name], value), name
    changed = [n for n in names if not torch.equal(dict(model.named_parameters())[n], before[n])]
    assert changed, "no trainable parameter moved"


@pytest.mark.parametrize("method", ["bitfit", "adapter"])
def test_added_modules_start_as_identity(method):
    """Zero biases and zero-initialised adapter up-projections keep the frozen model's output."""
    plain = build_backbone("t5-tiny", "random", seed=0).eval()
    model, _ = wrap(method)
    b = batch()
    with torch.no_grad():
        expected = plain(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).logits
        torch.testing.assert_close(model(**b).logits, expected)


def test_adapters_sit_after_self_attention_and_feed_forward_of_every_block():
    model, _ = wrap("adapter")
    adapters = [n for n, _ in model.named_modules() if n.endswith(".adapter")]
    layers = model.config.num_layers + model.config.num_decoder_layers
    assert len(adapters) == 2 * layers


@pytest.mark.parametrize("method", ["prompt", "attempt"])
def test_prompts_start_from_rows_of_the_real_embedding(method):
    model, _ = wrap(method, num_tasks=2)
    weight = model.backbone.get_input_embeddings().weight
    prompts = model.prompt.weight if method == "prompt" else model.prompt.target
    for row in prompts.detach().reshape(-1, weight.shape[1]):
        assert (weight == row).all(dim=1).any(), "a prompt row is not a row of the embedding"


def test_two_speed_learning_rates_reach_the_optimizer():
    model, cfg = wrap("attempt", lr=0.3, gate_lr=0.05)
    groups = param_groups("attempt", model, cfg)
    by_name = {g["name"]: g for g in groups}
    assert by_name["prompts"]["lr"] == 0.3 and by_name["gate"]["lr"] == 0.05
    assert {id(p) for p in by_name["gate"]["params"]} == {id(p) for p in model.prompt.gate.parameters()}
    # With plain SGD the applied step is exactly -lr * grad for each group.
    optimizer = torch.optim.SGD([{k: v for k, v in g.items() if k != "weight_decay"} for g in groups])
    before = {id(p): p.detach().clone() for g in groups for p in g["params"]}
    model(**batch()).loss.backward()
    optimizer.step()
    for group, lr in (("prompts", 0.3), ("gate", 0.05)):
        for p in by_name[group]["params"]:
            torch.testing.assert_close(p.detach(), before[id(p)] - lr * p.grad)


def test_loss_goes_down_with_attempt():
    model, cfg = wrap("attempt", num_tasks=1)
    optimizer = torch.optim.AdamW(param_groups("attempt", model, cfg))
    fixed = batch(seed=0)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = model(**fixed).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


@pytest.mark.parametrize("options, message", [
    ({"prompt_length": 0}, "prompt_length must be a positive integer"),
    ({"bottleneck": 0}, "bottleneck must be a positive integer"),
    ({"temperature": float("inf")}, "temperature K must be a finite number"),
    ({"temperature": float("nan")}, "temperature K must be a finite number"),
    ({"lr": -1.0}, "lr must be a positive finite number"),
    ({"gate_lr": 0.0}, "gate_lr must be a positive finite number"),
    ({"ablation": "no_gate"}, "unknown ATTEMPT ablation 'no_gate'"),
    ({"dropout": 0.1}, "method attempt has no option dropout"),
])
def test_invalid_attempt_options(options, message):
    with pytest.raises(UserError, match=re.escape(message)):
        make_config("attempt", **options)


def test_source_prompt_of_wrong_size_says_what_was_expected():
    backbone = build_backbone("t5-tiny", "random", seed=0)
    cfg = make_config("attempt", prompt_length=5, bottleneck=4)
    bad = torch.zeros(3, 6, backbone.config.d_model)
    with pytest.raises(UserError, match=r"shape \(3, 6, 32\), expected \[t, 5, 32\]"):
        apply_method("attempt", backbone, cfg, MethodInputs(source_prompts=bad))


def test_zero_tasks_is_refused():
    backbone = build_backbone("t5-tiny", "random", seed=0)
    with pytest.raises(UserError, match="N must be at least 1"):
        apply_method("prompt", backbone, make_config("prompt"), MethodInputs(num_tasks=0))


def test_multitask_prompted_model_refuses_missing_task_ids():
    model, _ = wrap("prompt", num_tasks=2)
    b = batch()
    b.pop("task_ids")
    with pytest.raises(ValueError, match="needs task_ids"):
        model(**b)


def test_spot_targeted_is_the_similarity_weighted_mean_of_the_top_k():
    from attempt_dist.methods.spot import targeted_init

    sources = torch.stack([torch.full((2, 3), 1.0), torch.full((2, 3), -1.0),
                           torch.tensor([[1.0, 0, 0], [0, 0, 0]])])
    probe = torch.full((2, 3), 2.0)
    # SPoT's average-token cosine: the means are [1,1,1], [-1,-1,-1], [1/2,0,0] against [2,2,2]:
    # cosine(probe, s0) = 1, cosine(probe, s1) = -1, cosine(probe, s2) = 1/sqrt(3)
    c2 = 1 / 3 ** 0.5
    expected = (1.0 * sources[0] + c2 * sources[2]) / (1.0 + c2)
    torch.testing.assert_close(targeted_init(sources, probe, top_k=2), expected)
    torch.testing.assert_close(targeted_init(sources, probe, top_k=1), sources[0])


def test_spot_generic_copies_the_named_source():
    model, _ = wrap("spot", num_tasks=2, source="src1")
    from tests.model_helpers import source_prompts
    for task in range(2):
        torch.testing.assert_close(model.prompt.weight[task].detach(), source_prompts(model.config.d_model)[1])
