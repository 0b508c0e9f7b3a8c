"""attempt_dist.planning.flops against an independent count: torch's FlopCounterMode on a real t5-tiny
forward and backward (prompt tuning on a frozen backbone, fine-tuning, each with and without
activation checkpointing), and the device-peak table."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attempt_dist.model.backbones import enable_activation_checkpointing, get_spec
from attempt_dist.planning.flops import StepShape, peak_flops, step_flops
from attempt_dist.methods.base import WrappedT5
from attempt_dist.methods.prompts import TaskPrompts

BATCH, INPUT_LEN, TARGET_LEN, PROMPT_LEN = 3, 11, 5, 7


def _counted(model, ids, labels) -> tuple[int, int]:
    with FlopCounterMode(display=False) as forward:
        loss = model(input_ids=ids, labels=labels).loss
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    return forward.get_total_flops(), backward.get_total_flops()


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("finetune", [False, True])
def test_step_flops_match_torch_flop_counter_on_t5_tiny(finetune, checkpointing):
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(0)
    config = get_spec("t5-tiny").config()
    backbone = T5ForConditionalGeneration(config)
    if checkpointing:
        enable_activation_checkpointing(backbone)
    backbone.train()
    ids = torch.randint(2, 1000, (BATCH, INPUT_LEN))
    labels = torch.randint(2, 1000, (BATCH, TARGET_LEN))
    if finetune:
        model, encoder_len = backbone, INPUT_LEN
    else:
        backbone.requires_grad_(False)
        model = WrappedT5(backbone, TaskPrompts(torch.randn(1, PROMPT_LEN, config.d_model)), method="prompt")
        encoder_len = INPUT_LEN + PROMPT_LEN
    forward, backward = _counted(model, ids, labels)
    flops = step_flops(config, StepShape(BATCH, encoder_len, TARGET_LEN), backbone_trainable=finetune,
                       checkpointing=checkpointing)
    assert flops.forward == forward
    # torch counts what runs: the recomputed forward lands inside backward.
    assert flops.backward + flops.recompute == backward
    assert flops.model == forward + flops.backward
    assert (flops.recompute > 0) == checkpointing


def test_frozen_backward_is_about_one_forward_and_finetune_two():
    config = get_spec("t5-large").config()
    shape = StepShape(32, 216 + 100, 4)
    frozen = step_flops(config, shape, backbone_trainable=False, checkpointing=False)
    full = step_flops(config, shape, backbone_trainable=True, checkpointing=False)
    assert full.backward == 2 * full.forward
    assert 0.95 < frozen.backward / frozen.forward < 1.15
    assert frozen.hardware == frozen.model


def test_device_peaks_and_override():
    assert peak_flops("NVIDIA H200", "bf16") == 989e12
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert peak_flops("NVIDIA A10G", "bf16") == 70e12
    assert peak_flops("cpu", "fp32") is None
    assert peak_flops("V100", "bf16") is None  # no bf16 on a V100
    assert peak_flops("cpu", "fp32", override_tflops=1.5) == 1.5e12
