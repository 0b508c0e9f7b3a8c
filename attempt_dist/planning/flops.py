"""FLOPs of one T5 training step, and the device peaks they are divided by (MFU, HFU).

    from attempt_dist.planning.flops import StepShape, step_flops, peak_flops
    shape = StepShape(batch=32, encoder_len=216 + 100, decoder_len=4)   # 100 prompt rows
    f = step_flops(t5_config, shape, backbone_trainable=False, checkpointing=False)
    mfu = f.model / step_seconds / peak_flops("NVIDIA H200", "bf16")

Counted: every matrix multiply, 2 FLOPs per multiply-add (what torch.utils.flop_counter
counts; tests/test_flops.py checks the count against it on t5-tiny). Norms, softmax,
activations, dropout and embedding look-ups are left out (well under 1% at T5 sizes), and so
are a method's own modules (a prompt table, ATTEMPT's r x d gate: < 0.1%).

Per layer, for B examples of encoder length L (input plus prompt rows) and decoder length T:

    encoder layer   q,k,v,o 8BLd*h + scores and mix 4BL^2*h + feed-forward 4BLd*f (6 gated)
    decoder layer   self-attention 8BTd*h + 4BT^2*h, cross-attention q,o 4BTd*h + k,v 4BLd*h
                    + 4BTL*h, feed-forward as the encoder's on T tokens
    lm head         2BTdV          (h = heads x d_kv, f = d_ff, V = vocabulary)

Backward, model FLOPs: a matmul's input gradient costs its forward again, its weight gradient
again. Fine-tuning (backbone weights trainable): both everywhere, backward = 2x forward. A
frozen backbone with a prompt or gate upstream (prompt tuning, ATTEMPT): input gradients only,
wherever the gradient flows: the whole encoder (the prompt is its input), the lm head, every
decoder layer except the first decoder layer's self-attention (its input, the target
embeddings, needs no gradient) and the query side of its cross-attention; so backward ~ 1x
forward. Attention's two batched matmuls take gradients for both operands (2x their forward).
Methods with trainable modules inside the layers (adapters, BitFit) are counted like the
frozen case (their small weight gradients left out).

HFU adds what the device computes but the model does not need: with activation checkpointing
every block's forward runs again in backward (the lm head is not checkpointed).

FLOPs are counted on the padded shapes the device computes; padding is reported apart (the
benchmark's padding fraction and real tokens/s).
"""

from __future__ import annotations

from dataclasses import dataclass

# Dense (no sparsity) tensor-core peaks, FLOP/s, by a substring of torch.cuda.get_device_name().
# Checked in order: the more specific names first. From the vendors' data sheets.
DEVICE_PEAKS: list[tuple[str, dict[str, float]]] = [
    ("H200", {"bf16": 989e12, "fp16": 989e12, "fp32": 494e12}),  # fp32 = TF32
    ("H100 PCIe", {"bf16": 756e12, "fp16": 756e12, "fp32": 378e12}),
    ("H100", {"bf16": 989e12, "fp16": 989e12, "fp32": 494e12}),  # SXM
    ("A100", {"bf16": 312e12, "fp16": 312e12, "fp32": 156e12}),
    ("L40S", {"bf16": 362e12, "fp16": 362e12, "fp32": 183e12}),
    ("A10G", {"bf16": 70e12, "fp16": 70e12, "fp32": 35e12}),
    ("A10", {"bf16": 125e12, "fp16": 125e12, "fp32": 62.5e12}),
    ("L4", {"bf16": 121e12, "fp16": 121e12, "fp32": 60e12}),
    ("V100", {"fp16": 125e12, "fp32": 15.7e12}),
]


def peak_flops(device_name: str, dtype: str, override_tflops: float | None = None) -> float | None:
    """The device's dense peak in FLOP/s for `dtype` ("bf16", "fp16", "fp32"); None when unknown
    (the CPU, an unlisted GPU) unless `override_tflops` (--peak-tflops) says it."""
    if override_tflops is not None:
        return override_tflops * 1e12
    for key, peaks in DEVICE_PEAKS:
        if key.lower() in device_name.lower():
            return peaks.get(dtype)
    return None


@dataclass(frozen=True)
class StepShape:
    """One micro-batch as the device computes it (padded)."""

    batch: int
    encoder_len: int
    """Input tokens plus prompt rows."""
    decoder_len: int


@dataclass(frozen=True)
class Flops:
    forward: float
    backward: float
    recompute: float

    @property
    def model(self) -> float:
        """What MFU divides: forward plus the backward the method needs."""
        return self.forward + self.backward

    @property
    def hardware(self) -> float:
        """What HFU divides: model FLOPs plus checkpointing's recomputation."""
        return self.model + self.recompute

    def __add__(self, other: "Flops") -> "Flops":
        return Flops(self.forward + other.forward, self.backward + other.backward, self.recompute + other.recompute)


def _dims(config) -> tuple[int, int, int, int, int, int, bool]:
    inner = config.num_heads * config.d_kv
    gated = getattr(config, "is_gated_act", None)
    if gated is None:
        gated = str(getattr(config, "feed_forward_proj", "relu")).startswith("gated")
    decoder_layers = getattr(config, "num_decoder_layers", None) or config.num_layers
    return config.d_model, inner, config.d_ff, config.vocab_size, config.num_layers, decoder_layers, bool(gated)


def step_flops(config, shape: StepShape, *, backbone_trainable: bool, checkpointing: bool) -> Flops:
    """FLOPs of one micro-batch's forward and backward through T5 `config` (a T5Config or any
    object with its fields); see the module docstring for what is counted."""
    d, h, f, vocab, enc_layers, dec_layers, gated = _dims(config)
    B, L, T = shape.batch, shape.encoder_len, shape.decoder_len
    ffn_mats = 3 if gated else 2

    def linear(tokens: int, d_in: int, d_out: int) -> float:
        return 2.0 * B * tokens * d_in * d_out

    def attention(q_len: int, kv_len: int) -> float:  # scores q.k^T plus the weighted sum of v
        return 2 * 2.0 * B * q_len * kv_len * h

    enc_linear = 4 * linear(L, d, h) + ffn_mats * linear(L, d, f)
    enc_attn = attention(L, L)
    self_linear, self_attn = 4 * linear(T, d, h), attention(T, T)
    cross_q_o, cross_k_v, cross_attn = 2 * linear(T, d, h), 2 * linear(L, d, h), attention(T, L)
    dec_ffn = ffn_mats * linear(T, d, f)
    head = linear(T, d, vocab)

    enc_layer = enc_linear + enc_attn
    dec_layer = self_linear + self_attn + cross_q_o + cross_k_v + cross_attn + dec_ffn
    blocks = enc_layers * enc_layer + dec_layers * dec_layer
    forward = blocks + head
    if backbone_trainable:  # input and weight gradients of every matmul
        backward = 2 * forward
    else:
        # Input gradients: linear layers 1x, attention's two matmuls 2x (both operands).
        enc_back = enc_linear + 2 * enc_attn
        dec_back = self_linear + 2 * self_attn + cross_q_o + cross_k_v + 2 * cross_attn + dec_ffn
        # The first decoder layer: its self-attention sees only the frozen target embeddings;
        # in its cross-attention the query projection needs no gradient and the scores only
        # the keys' (the weighted sum still both: the weights depend on the keys).
        first_dec = cross_q_o / 2 + cross_k_v + cross_attn / 2 + cross_attn + dec_ffn
        backward = enc_layers * enc_back + (dec_layers - 1) * dec_back + first_dec + head
    recompute = blocks if checkpointing else 0.0
    return Flops(forward=forward, backward=backward, recompute=recompute)
