"""--attn-implementation: the same T5 attention by another kernel (issue 17): sdpa (the default)
and eager give the same loss and gradients; flex attention cannot train on the CPU and says so."""

import copy

import pytest
import torch

from attempt_dist.errors import UserError
from attempt_dist.model.backbones import use_attention
from attempt_dist.model.build import load_backbone
from attempt_dist.training.config import build_parser, config_from_args, parse_train_args
from tests.model_helpers import batch, wrap
from tests.train_helpers import TINY


def _config(*extra):
    return config_from_args(parse_train_args(build_parser(), [*TINY, "--method", "prompt", "--init", "random", *extra]))


def test_the_option_reaches_the_backbone_and_sdpa_is_the_default():
    assert load_backbone(_config()).config._attn_implementation == "sdpa"
    assert load_backbone(_config("--attn-implementation", "eager")).config._attn_implementation == "eager"


def test_flex_attention_without_a_gpu_is_one_clear_line_for_training_and_sdpa_for_predicting(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = _config("--attn-implementation", "flex_attention")
    with pytest.raises(UserError, match="needs a GPU"):
        load_backbone(cfg)
    assert load_backbone(cfg, training=False).config._attn_implementation == "sdpa"


def test_sdpa_and_eager_give_the_same_loss_and_gradients():
    sdpa, _ = wrap("prompt")  # padded rows in the batch: the mask and the position bias both matter
    eager = copy.deepcopy(sdpa)
    use_attention(eager.backbone, "eager")
    assert sdpa.backbone.config._attn_implementation == "sdpa"
    data = batch(batch_size=4)
    results = []
    for model in (sdpa, eager):
        loss = model(**data).loss
        loss.backward()
        results.append((loss.detach(), model.prompt.weight.grad.clone()))
    (loss_a, grad_a), (loss_b, grad_b) = results
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    assert torch.allclose(grad_a, grad_b, rtol=1e-4, atol=1e-7)
