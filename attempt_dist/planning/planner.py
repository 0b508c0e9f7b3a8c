"""Which DeepSpeed layout, checkpointing and micro-batch fit a run under a GPU memory cap.

    report = plan_memory(PlanRequest(model="t5-3b", method="attempt", batch_size=32, gpu_mem_cap=24 * 2**30))
    report.recommended        # the fastest candidate predicted to fit, or None

Each candidate is a ZeRO layout (stage 0/2/3, optimizer and parameter offload), activation
checkpointing on or off, and a micro-batch x accumulation that makes up the requested per-rank
batch. Its predicted peak is the sum of
- model states (planning/model_states.py: DeepSpeed's own accounting, frozen weights apart),
- the activation memory of one micro-step, traced on the meta device by running the real model
  (planning/trace.py): saved activations plus the transient buffers of the backward,
- what evaluation needs beyond training: ZeRO-3's whole-weight gather and the decoder caches of
  generation, at the largest evaluation batch (up to 2x the micro-batch) that fits,
- the CUDA context and library workspaces, which the allocator cap does not see.
A candidate fits when that sum is at most the cap less a headroom for allocator fragmentation,
and its host needs (offload) fit the host memory (`plan`: this machine's unless --host-mem is given).

The step cost is a rough roofline (constants below, an H100-class GPU on PCIe): compute at an
efficiency that grows with the tokens of a micro-step, ZeRO-3 parameter gathers, and the
optimizer step (on the CPU when offloaded). It only ranks candidates; benchmarks/ records
measured throughput.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ..model.backbones import get_spec
from ..errors import UserError
from ..methods import profile
from ..shape_cache import cached
from .model_states import LAYOUTS, ModelStates, ZeroLayout, model_states
from .trace import StepTrace, trace_step

GIB = 2**30
# The CUDA context, cuBLAS/cuDNN workspaces, NCCL buffers and the caching allocator's slack: what
# the device uses beyond the allocator's peak (which --gpu-mem-cap limits). NVML's device-wide
# use minus max_memory_allocated was 1.5-2.0 GiB for single-rank runs on an H200 with torch 2.11
# (benchmarks/results/gpu-plan-check.md).
CUDA_CONTEXT_BYTES = int(1.5 * GIB)
HEADROOM = 0.05  # of the cap, for the caching allocator's fragmentation and rounding

# Roofline constants of the step-cost estimate (an H100-class GPU on PCIe Gen4/5).
GPU_BF16_FLOPS = 400e12      # sustained dense bf16 at large matmuls
HALF_EFFICIENCY_TOKENS = 2048  # a micro-step of this many tokens runs at half that rate
PCIE_BYTES_PER_S = 20e9
HBM_BYTES_PER_S = 2e12
NETWORK_BYTES_PER_S = 100e9  # between ranks (NVLink-class inside a node)
CPU_ADAM_PARAMS_PER_S = 3e8  # torch AdamW on the host (ZeRO-Offload with a client optimizer)
MICRO_STEP_OVERHEAD_S = 0.004


@dataclass
class PlanRequest:
    model: str
    method: str
    batch_size: int = 32
    """Examples per rank per optimizer step (micro-batch x accumulation)."""
    max_length: int = 256
    """Input tokens, before the soft prompt."""
    max_target_length: int = 128
    options: dict = field(default_factory=dict)
    """Method options by flag name (prompt_length, bottleneck, ...); the method's defaults otherwise."""
    num_tasks: int = 1
    world_size: int = 1
    gpu_mem_cap: int | None = 24 * GIB
    host_mem: int | None = None
    device: str = "cuda"
    """cuda: bf16 with the GPU's attention kernel; cpu: fp32 and the CPU's (this project's CPU path)."""
    context_bytes: int | None = None
    headroom: float = HEADROOM
    max_eval_examples: int | None = None
    """Evaluation examples per task, when capped (short runs): bounds the evaluation batch."""
    padded_batches: bool = True
    """Batches hold padding (the usual case, and the larger: T5's position bias is then
    materialised per example in every layer). False only for data of one length."""

    def __post_init__(self) -> None:
        get_spec(self.model)
        from ..methods import method_module

        method_module(self.method)
        self.method_config  # the method's own checks on its options
        for name in ("batch_size", "max_length", "max_target_length", "num_tasks", "world_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.device not in ("cuda", "cpu"):
            raise UserError(f"device must be cuda or cpu, not {self.device!r}")
        if self.gpu_mem_cap is not None and self.gpu_mem_cap <= 0:
            raise UserError("the GPU memory cap must be positive")
        if not 0 <= self.headroom < 0.5:
            raise UserError(f"headroom must be in [0, 0.5), got {self.headroom}")

    @property
    def prompted(self) -> bool:
        from ..methods import PROMPT_METHODS

        return self.method in PROMPT_METHODS

    @property
    def source_length(self) -> int:
        return self.max_length + (self.method_config.prompt_length if self.prompted else 0)

    @property
    def method_config(self):
        from ..methods.options import config_from_options

        return config_from_options(self.method, self.options)

    @property
    def weight_bytes(self) -> int:
        return 2 if self.device == "cuda" else 4

    @property
    def context(self) -> int:
        if self.context_bytes is not None:
            return self.context_bytes
        return CUDA_CONTEXT_BYTES if self.device == "cuda" else 0


@dataclass
class Candidate:
    layout: str
    stage: int
    offload_optimizer: bool
    offload_param: bool
    activation_checkpointing: bool
    micro_batch: int
    grad_accum: int
    components: dict[str, int]
    """Predicted device bytes per component at the peak."""
    peak_bytes: int
    """Everything on the device: allocator peak + CUDA context."""
    host_bytes: int
    fits: bool
    why_not: str | None
    step_seconds: float
    eval_batch: int = 1
    """Evaluation batch predicted to fit (at most 2x the micro-batch: evaluate.EVAL_BATCH_FACTOR)."""
    relative_cost: float = 1.0
    short_of: str | None = None
    """The memory that ran out when it does not fit: "GPU" or "host"."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlanReport:
    request: PlanRequest
    params: dict[str, int]
    candidates: list[Candidate]
    recommended: Candidate | None
    smallest_fitting_cap: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"request": asdict(self.request), "params": self.params,
                "recommended": self.recommended.to_dict() if self.recommended else None,
                "smallest_fitting_cap_bytes": self.smallest_fitting_cap,
                "candidates": [c.to_dict() for c in self.candidates], "notes": self.notes}


# --- the model's numbers --------------------------------------------------------------------------
def _largest_module(model: torch.nn.Module) -> int:
    return max((sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0)


def _forward_flops(req: PlanRequest, micro: int) -> tuple[float, float]:
    """(whole forward, the checkpointable part: both T5 stacks without the LM head)."""
    spec = get_spec(req.model)
    d, inner = spec.d_model, spec.num_heads * spec.d_kv
    ff = (3 if spec.feed_forward_proj.startswith("gated") else 2) * d * spec.d_ff
    enc_layer, dec_layer = 4 * d * inner + ff, 8 * d * inner + ff
    ls, lt = req.source_length, req.max_target_length
    enc_layers, dec_layers = spec.num_layers, spec.num_decoder_layers or spec.num_layers
    matmuls = 2 * micro * (ls * enc_layers * enc_layer + lt * dec_layers * dec_layer)
    attention = 4 * micro * inner * (enc_layers * ls * ls + dec_layers * (lt * lt + lt * ls))
    head = 2 * micro * lt * d * spec.vocab_size
    return matmuls + attention + head, matmuls + attention


def step_seconds(req: PlanRequest, layout: ZeroLayout, checkpointing: bool, micro: int, accum: int,
                 trainable: int, frozen: int) -> float:
    forward, stacks = _forward_flops(req, micro)
    backward = profile(req.method).backward_factor  # frozen weights: input gradients only
    flops = forward * (1 + backward) + (stacks if checkpointing else 0.0)
    tokens = micro * (req.source_length + req.max_target_length)
    compute = flops / (GPU_BF16_FLOPS * tokens / (tokens + HALF_EFFICIENCY_TOKENS))
    micro_step = compute + MICRO_STEP_OVERHEAD_S
    if layout.stage == 3:  # every module's weights gathered for forward, backward and recompute
        passes = 2 + (1 if checkpointing else 0)
        weights = req.weight_bytes * (trainable + frozen)
        if layout.offload_param:
            rate = PCIE_BYTES_PER_S
        elif req.world_size > 1:
            rate = NETWORK_BYTES_PER_S * req.world_size / (req.world_size - 1)
        else:
            rate = HBM_BYTES_PER_S
        micro_step += passes * weights / rate
    optimizer = 16 * trainable / HBM_BYTES_PER_S
    if layout.offload_optimizer:  # gradients down, weights up, Adam on the host
        optimizer = 2 * req.weight_bytes * trainable / PCIE_BYTES_PER_S + trainable / CPU_ADAM_PARAMS_PER_S
    return accum * micro_step + optimizer


# --- planning ---------------------------------------------------------------------------------------
def micro_batches(batch_size: int) -> list[int]:
    """Divisors of the batch, largest first (micro-batch x accumulation = batch exactly)."""
    return [m for m in range(batch_size, 0, -1) if batch_size % m == 0]


def training_dtype(device: str) -> torch.dtype:
    """bf16 on a GPU (the DeepSpeed configs turn it on with CUDA), fp32 on the CPU path."""
    return torch.bfloat16 if device == "cuda" else torch.float32


def trace_for(req: PlanRequest, checkpointing: bool, dtype: torch.dtype | None = None) -> StepTrace:
    """The meta-device trace of one micro-step, cached per configuration (shape_cache.py)."""
    dtype = dtype or training_dtype(req.device)
    config = {**_model_key(req), "checkpointing": checkpointing, "dtype": str(dtype), "attention": req.device,
              "max_length": req.max_length, "max_target_length": req.max_target_length,
              "padded": req.padded_batches}
    return StepTrace.from_dict(cached("trace", config, lambda: _trace(req, checkpointing, dtype).to_dict()))


def _trace(req: PlanRequest, checkpointing: bool, dtype: torch.dtype) -> StepTrace:
    from ..model.backbones import enable_activation_checkpointing
    from ..model.params import build_on_meta

    def build():
        wrapped, _ = build_on_meta(req.model, req.method, num_tasks=req.num_tasks, **req.options)
        # As DeepSpeed does with bf16 on: the whole module, prompts included, in bf16.
        wrapped = wrapped.to(dtype)
        if checkpointing:
            enable_activation_checkpointing(wrapped.backbone)
        return wrapped

    vocab = min(1000, get_spec(req.model).vocab_size)
    return trace_step(build, input_length=req.max_length, target_length=req.max_target_length,
                      attention=req.device, vocab=vocab, padded=req.padded_batches)


def _model_key(req: PlanRequest) -> dict:
    """What the wrapped model depends on (its parameters, and so its trace)."""
    return {"model": req.model, "method": req.method, "num_tasks": req.num_tasks, "options": req.options}


def _params(req: PlanRequest) -> dict[str, int]:
    return cached("plan-params", _model_key(req), lambda: _count_params(req))


def _count_params(req: PlanRequest) -> dict[str, int]:
    from ..model.params import build_on_meta

    wrapped, backbone_total = build_on_meta(req.model, req.method, num_tasks=req.num_tasks, **req.options)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in wrapped.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in wrapped.buffers())  # ATTEMPT's source prompts ride along
    return {"trainable": trainable, "frozen": frozen, "backbone": backbone_total,
            "largest_layer": _largest_module(wrapped)}


def generation_bytes(req: PlanRequest, batch: int) -> int:
    """Greedy generation of `batch` examples: the decoder's key/value caches (self-attention
    over the target, cross-attention over the whole input: the large one), the encoder's
    states and one step's fp32 logits. Generation keeps nothing for backward, so this is a
    sum of buffers rather than a trace."""
    spec = get_spec(req.model)
    inner = spec.num_heads * spec.d_kv
    layers = spec.num_decoder_layers or spec.num_layers
    w = req.weight_bytes
    caches = layers * 2 * batch * (req.source_length + req.max_target_length) * inner * w
    return caches + batch * req.source_length * spec.d_model * w + 4 * batch * spec.vocab_size


def _evaluation_peak(req: PlanRequest, params: dict, layout: ZeroLayout, states: ModelStates,
                     batch: int) -> int:
    """Weights during evaluation plus generation. Under ZeRO-3 the weights are gathered whole
    once per call when that fits (distributed.engine.generation_gather_fits, same rule), else
    one layer at a time."""
    from ..distributed.engine import GATHER_MARGIN_FRACTION, GATHER_MARGIN_MIN_BYTES

    weights = states.device
    if layout.stage == 3 and req.gpu_mem_cap is not None:
        whole = req.weight_bytes * (params["trainable"] + params["frozen"])
        margin = max(GATHER_MARGIN_MIN_BYTES, int(GATHER_MARGIN_FRACTION * req.gpu_mem_cap))
        held = states.device - states.gathered_layers
        if held + whole + margin <= req.gpu_mem_cap:
            weights = held + whole
    return weights + generation_bytes(req, batch)


def _eval_batch(req: PlanRequest, params: dict, layout: ZeroLayout, states: ModelStates, micro: int) -> tuple[int, int]:
    """(the largest evaluation batch up to 2x the micro-batch that fits, its peak)."""
    from ..training.evaluate import EVAL_BATCH_FACTOR

    limit = None if req.gpu_mem_cap is None else req.gpu_mem_cap * (1 - req.headroom) - req.context
    batch = EVAL_BATCH_FACTOR * micro
    if req.max_eval_examples:
        batch = min(batch, max(1, math.ceil(req.max_eval_examples / req.world_size)))
    while True:
        peak = _evaluation_peak(req, params, layout, states, batch)
        if limit is None or peak <= limit or batch == 1:
            return batch, peak
        batch = max(1, batch // 2)


def evaluate_candidate(req: PlanRequest, params: dict, layout: ZeroLayout, checkpointing: bool,
                       micro: int, trace: StepTrace) -> Candidate:
    states: ModelStates = model_states(layout, trainable=params["trainable"], frozen=params["frozen"],
                                       largest_layer=params["largest_layer"], world_size=req.world_size,
                                       weight_bytes=req.weight_bytes)
    saved = trace.saved_bytes(micro)
    peak_activations = trace.peak_bytes(micro)
    train_peak = states.device + peak_activations
    eval_batch, eval_peak = _eval_batch(req, params, layout, states, micro)
    components = {
        "frozen_weights": states.frozen_weights,
        "trainable_weights": states.trainable_weights,
        "gradients": states.gradients,
        "optimizer_state": states.optimizer_state,
        "gathered_layers": states.gathered_layers,
        "saved_activations": saved,
        "transient_buffers": max(0, peak_activations - saved),
        "evaluation": max(0, eval_peak - train_peak),
        "cuda_context": req.context,
    }
    peak = sum(components.values())
    why_not = short_of = None
    if req.gpu_mem_cap is not None and peak > req.gpu_mem_cap * (1 - req.headroom):
        why_not = f"needs {peak / GIB:.1f} GiB of {req.gpu_mem_cap / GIB:.1f} GiB less {req.headroom:.0%} headroom"
        short_of = "GPU"
    elif req.host_mem is not None and states.host > req.host_mem:
        why_not = f"needs {states.host / GIB:.1f} GiB of host memory, {req.host_mem / GIB:.1f} GiB available"
        short_of = "host"
    accum = req.batch_size // micro
    seconds = step_seconds(req, layout, checkpointing, micro, accum, params["trainable"], params["frozen"])
    return Candidate(layout.name, layout.stage, layout.offload_optimizer, layout.offload_param, checkpointing,
                     micro, accum, components, peak, states.host, why_not is None, why_not, seconds, eval_batch,
                     short_of=short_of)


def plan_memory(req: PlanRequest, *, all_micro_batches: bool = False) -> PlanReport:
    """Every layout x checkpointing with its largest fitting micro-batch (all micro-batches with
    all_micro_batches), the fastest fitting one recommended."""
    params = _params(req)
    traces = {ac: trace_for(req, ac) for ac in (False, True)}
    candidates: list[Candidate] = []
    smallest_cap = None
    for layout in LAYOUTS:
        for ac in (False, True):
            options = [evaluate_candidate(req, params, layout, ac, m, traces[ac]) for m in micro_batches(req.batch_size)]
            fitting = [c for c in options if c.fits]
            chosen = options if all_micro_batches else ([fitting[0]] if fitting else [options[-1]])
            candidates.extend(chosen)
            need = min(c.peak_bytes for c in options) / (1 - req.headroom)
            smallest_cap = need if smallest_cap is None else min(smallest_cap, need)
    fitting = [c for c in candidates if c.fits]
    best = min(fitting, key=lambda c: (c.step_seconds, c.peak_bytes)) if fitting else None
    fastest = min(c.step_seconds for c in (fitting or candidates))
    for c in candidates:
        c.relative_cost = round(c.step_seconds / fastest, 3)
    notes = [] if best else [_nothing_fits(req, candidates, smallest_cap)]
    return PlanReport(req, params, candidates, best, int(smallest_cap) if smallest_cap else None, notes)


def _nothing_fits(req: PlanRequest, candidates: list[Candidate], smallest_cap: float) -> str:
    cap = f"{req.gpu_mem_cap / GIB:.1f} GiB" if req.gpu_mem_cap else "no cap"
    head = (f"{req.model} {req.method} at batch {req.batch_size} fits under {cap} in no configuration "
            f"(ZeRO 0/2/3, offload, activation checkpointing, micro-batch 1..{req.batch_size})")
    gpu_ok = [c for c in candidates if req.gpu_mem_cap is None or c.peak_bytes <= req.gpu_mem_cap * (1 - req.headroom)]
    if gpu_ok:  # only the host is short: offload fits the GPU
        least = min(gpu_ok, key=lambda c: c.host_bytes)
        return (f"{head}; {least.layout} would fit the GPU but needs {least.host_bytes / GIB:.1f} GiB of host "
                f"memory ({req.host_mem / GIB:.1f} GiB available; --host-mem sets the compute nodes')")
    return f"{head}; the smallest cap that fits is {math.ceil(smallest_cap / GIB * 10) / 10:.1f} GiB"
