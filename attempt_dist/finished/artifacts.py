"""A finished run's trained parameters as a self-contained artefact.

    trainable.safetensors   every trained tensor (prompts, gate, adapters, biases, or the whole
                            backbone for fine-tuning) and the method's own buffers (ATTEMPT's
                            frozen source prompts), named as in the wrapped model
    trainable.json          what rebuilds the model around them: backbone (and its hub id),
                            method, resolved options, task order, source prompt names, the
                            library they came from, and the whole training config
    README.md               a model card: what was trained, its scores, how to use it

Nothing outside these files is needed to predict with the run (attempt_dist.finished.predict): ATTEMPT
carries its source prompts and gate, so deleting the prompt library does not break it. Runs
saved before this format (one pickled trainable.pt) still load; an ATTEMPT run of that kind
needs its library folder, and says so when it is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .. import distributed as dist
from ..errors import UserError
from ..atomic_files import atomic_path, read_json, write_json_atomic, write_text_atomic

WEIGHTS_FILE = "trainable.safetensors"
META_FILE = "trainable.json"
CARD_FILE = "README.md"
LEGACY_FILE = "trainable.pt"
# What --overwrite clears before a new run, so an old artefact never sits beside a new config.
ARTIFACT_FILES = (WEIGHTS_FILE, META_FILE, CARD_FILE, LEGACY_FILE)
FORMAT = "attempt-dist/trainable"
FORMAT_VERSION = 1


@dataclass
class Artifact:
    state: dict[str, torch.Tensor]
    meta: dict
    """trainable.json's content (for a legacy run: rebuilt from trainable.pt and config.json)."""
    legacy: bool = False


def method_buffers(module) -> dict[str, torch.Tensor]:
    """Buffers the method added (outside the backbone): ATTEMPT's frozen source prompts."""
    return {n: b.detach().float().cpu().clone() for n, b in module.named_buffers()
            if not n.startswith("backbone.")}


def _buffer_names(module) -> list[str]:
    return sorted(n for n, _ in module.named_buffers() if not n.startswith("backbone."))


def artifact_state(module, info) -> dict | None:
    """Whole trained tensors and method buffers on rank 0 (gathered under ZeRO-3; every rank must call)."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    with dist.gathered([p for _, p in named]):
        if info.is_main:
            return {**{n: p.detach().float().cpu().clone() for n, p in named}, **method_buffers(module)}
    return None


def artifact_meta(cfg, module) -> dict:
    """trainable.json for a run of `cfg` whose wrapped model is `module`."""
    from ..model.backbones import get_spec
    from ..methods import needs
    from ..methods.options import options_of

    library, names = None, None
    if needs(cfg.method).library and cfg.source_prompts:
        from ..methods.prompts import library_index

        index = library_index(cfg.source_prompts)
        # ATTEMPT keeps the sources it mixes (one, under the single_prompt ablation); SPoT
        # started from the library prompts it was given.
        names = list(getattr(module.prompt, "source_names", None) or cfg.sources or sorted(index["prompts"]))
        library = {"path": str(Path(cfg.source_prompts).resolve()),
                   **{k: index.get(k) for k in ("backbone", "d_model", "prompt_length")},
                   "prompts": {n: index["prompts"].get(n, {}) for n in names}}
    return {"format": FORMAT, "version": FORMAT_VERSION, "backbone": cfg.model,
            "hub_id": get_spec(cfg.model).hub_id or None, "method": cfg.method, "tasks": list(cfg.tasks),
            "options": options_of(cfg.method, cfg.method_config()), "source_prompts": names,
            "library": library, "buffers": _buffer_names(module), "train": cfg.to_dict()}


def save_artifact(module, out: Path, info, meta: dict) -> None:
    """Write trainable.safetensors and trainable.json into `out` (rank 0; every rank must call)."""
    state = artifact_state(module, info)
    if info.is_main:
        write_artifact(out, Artifact(state, meta))
    dist.barrier()


def write_artifact(out: Path, artifact: Artifact) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in artifact.state.items()}
    with atomic_path(Path(out) / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "attempt_dist": FORMAT})
    write_json_atomic(Path(out) / META_FILE, {**artifact.meta, "format": FORMAT, "version": FORMAT_VERSION})


def read_artifact(run: str | Path) -> Artifact:
    """A run folder's (or an exported artefact folder's) trained tensors and their metadata; a
    UserError naming the file when one is missing, truncated or corrupt."""
    run = Path(run)
    if (run / WEIGHTS_FILE).exists():
        if not (run / META_FILE).exists():
            raise UserError(f"{run} has {WEIGHTS_FILE} but no {META_FILE}; copy both files of the artefact")
        meta = _read_meta(run / META_FILE)
        if meta.get("format") != FORMAT or not isinstance(meta.get("version", 0), int) or \
                meta.get("version", 0) > FORMAT_VERSION:
            raise UserError(f"{run / META_FILE} is not an attempt-dist artefact of version <= {FORMAT_VERSION} "
                            f"(format {meta.get('format')!r}, version {meta.get('version')!r}); update attempt-dist")
        return Artifact(_read_weights(run / WEIGHTS_FILE), meta)
    if (run / LEGACY_FILE).exists():
        return _read_legacy(run)
    if not run.is_dir():
        raise UserError(f"{run} is not a folder; pass a finished run's --output-dir")
    raise UserError(f"{run} holds no trained parameters ({WEIGHTS_FILE}); is it a finished run? "
                    "(an unfinished one has only checkpoints: resume it with `attempt-dist train --resume`)")


DAMAGED = "the file is truncated or corrupt: copy it again from the run (or export the run again)"


def _read_meta(path: Path) -> dict:
    """trainable.json (or an older run's config.json): a JSON object with a "train" object."""
    try:
        meta = read_json(path)
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise UserError(f"{path} cannot be read as JSON ({getattr(err, 'strerror', None) or err}); {DAMAGED}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("train"), dict):
        raise UserError(f"{path} holds no \"train\" configuration (a JSON object with one was expected); {DAMAGED}")
    return meta


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"{path} is not a readable safetensors file ({err}); {DAMAGED}") from None


def artifact_config(artifact: Artifact, run: Path):
    """The TrainConfig an artefact was trained with; a UserError naming the file it came from."""
    from ..training.config import TrainConfig

    source = run / ("config.json" if artifact.legacy else META_FILE)
    try:
        return TrainConfig.from_dict(artifact.meta["train"])
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    except (TypeError, ValueError) as err:
        raise UserError(f"{source}: its \"train\" configuration cannot be read ({err}); {DAMAGED}") from None


def _read_legacy(run: Path) -> Artifact:
    """A run saved before safetensors: trainable.pt ({"state", "meta"}) plus config.json."""
    try:
        saved = torch.load(run / LEGACY_FILE, map_location="cpu", weights_only=False)
    except Exception as err:  # unpickling a damaged file can raise almost any exception type
        raise UserError(f"{run / LEGACY_FILE} cannot be loaded ({type(err).__name__}: {err}); {DAMAGED}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise UserError(f"{run / LEGACY_FILE} is not an older run's trained parameters (a dict with \"state\"); "
                        f"{DAMAGED}")
    if not (run / "config.json").exists():
        raise UserError(f"{run} is an older run ({LEGACY_FILE}) without its config.json; "
                        "copy config.json back beside it")
    train = _read_meta(run / "config.json")["train"]
    old = saved.get("meta") if isinstance(saved.get("meta"), dict) else {}
    meta = {**old, "train": train, "source_prompts": None, "library": None,
            "hub_id": None, "buffers": [], "format": FORMAT, "version": 0}
    if train.get("source_prompts"):
        meta["library"] = {"path": str(Path(train["source_prompts"]).resolve())}
    return Artifact(saved["state"], meta, legacy=True)


def read_trainable(run: str | Path) -> dict[str, torch.Tensor]:
    """Just the trained tensors of a run, by name, without the frozen buffers the artefact
    also carries (the pipeline reads its stage runs with this)."""
    artifact = read_artifact(run)
    frozen = set(artifact.meta.get("buffers") or ())
    return {k: v for k, v in artifact.state.items() if k not in frozen}


def write_model_card(out: Path, meta: dict, record: dict) -> None:
    """README.md in the run folder: what was trained, how well, and how to use it."""
    write_text_atomic(Path(out) / CARD_FILE, model_card(meta, record))


def model_card(meta: dict, record: dict) -> str:
    from ..methods import profile

    tasks = ", ".join(meta["tasks"])
    from ..model.backbones import BACKBONES

    spec = BACKBONES.get(meta["backbone"])
    shipped = spec is not None and spec.weights
    backbone = meta["backbone"] + (f" (`{meta['hub_id']}`)" if meta.get("hub_id") else
                                   f" (weights shipped in attempt_dist/assets/{spec.weights})" if shipped
                                   else " (random weights)")
    params = record.get("params", {})
    lines = [f"# {meta['method']} on {tasks} — {meta['backbone']}", "",
             "Trained with attempt-dist (ATTEMPT and its baselines over frozen T5).", "",
             "| | |", "| --- | --- |",
             f"| method | {meta['method']} |", f"| backbone | {backbone} |", f"| tasks | {tasks} |",
             f"| trainable parameters | {params.get('trainable', 'n/a')} of {params.get('total', 'n/a')} |",
             f"| optimizer steps | {record.get('steps', 'n/a')} |"]
    if meta.get("source_prompts"):
        # A method that keeps its source prompts (ATTEMPT) carries them as buffers; SPoT only started from them.
        lines.append(f"| source prompts | {', '.join(meta['source_prompts'])} (carried in {WEIGHTS_FILE}) |"
                     if meta.get("buffers") else
                     f"| source prompts | {', '.join(meta['source_prompts'])} (initialisation) |")
    options = ", ".join(f"{k}={v}" for k, v in sorted(meta.get("options", {}).items()))
    lines += [f"| options | {options} |", "", "## Scores", "", "| split | task | metric | value |",
              "| --- | --- | --- | --- |"]
    for split, per_task in record.get("metrics", {}).items():
        for task, metrics in per_task.items():
            for name, value in metrics.items():
                lines.append(f"| {split} | {task} | {name} | {value:.2f} |"
                             if isinstance(value, (int, float)) else f"| {split} | {task} | {name} | {value} |")
    lines += ["", "## Use", "", "```bash",
              "attempt-dist predict RUN --input rows.jsonl --output predictions.jsonl",
              f"attempt-dist predict RUN --text \"{meta['tasks'][0]} ...\" --task {meta['tasks'][0]}",
              "```", "", "```python", "import attempt_dist", "run = attempt_dist.load_run(\"RUN\")",
              f"run.predict([\"{meta['tasks'][0]} ...\"], tasks=\"{meta['tasks'][0]}\")", "```", ""]
    peft = profile(meta["method"]).peft
    if peft is not None:
        lines += [f"As a PEFT {peft.kind} adapter: `attempt-dist export RUN --format peft OUT`.", ""]
    lines += ["## Files", "",
              f"- `{WEIGHTS_FILE}`, `{META_FILE}`: the trained tensors and what rebuilds the model around them",
              "- `config.json`, `result.json`: the training configuration and the run record",
              "- `predictions/`, `attention/`: dev and test predictions (and ATTEMPT's attention weights)", ""]
    return "\n".join(lines)

