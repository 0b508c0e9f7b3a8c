"""Soft prompts: vocabulary initialisation, the per-task prompt table, and the prompt library.

The library is a folder of saved prompts with metadata (backbone, d_model, prompt length,
task), validated on load so a prompt from another backbone or of the wrong size is refused
with a message that says which one and what was expected. Each prompt is a safetensors file
(tensor "prompt" [m, d], its metadata as JSON under the header key "attempt_dist"), indexed
by library.json; libraries written before that (torch `.pt` files) still load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..atomic_files import atomic_path, write_json_atomic
from ..distributed import gathered

# Lester et al. sample initial prompt rows among the most frequent tokens; T5's
# sentencepiece ids are roughly frequency-ordered, so "the 5,000 first ids".
VOCAB_INIT_TOP_IDS = 5000
LIBRARY_INDEX = "library.json"
PROMPT_SUFFIX = ".safetensors"
META_KEY = "attempt_dist"  # safetensors header key holding the prompt's metadata (JSON)


def vocab_init(embedding: nn.Embedding, num_prompts: int, length: int, *,
               generator: torch.Generator | None = None,
               top_ids: int = VOCAB_INIT_TOP_IDS) -> torch.Tensor:
    """[num_prompts, length, d] copies of rows of the backbone's *real* input embedding.

    The rows are read from the embedding as it is now (the pretrained one when the backbone
    was loaded with `from_pretrained`), never from a re-initialised copy.
    """
    with gathered([embedding.weight]):  # whole under ZeRO-3, where each rank holds a shard
        weight = embedding.weight.detach().clone()
    high = min(top_ids, weight.shape[0])
    if weight.device.type == "meta":
        return torch.empty(num_prompts, length, weight.shape[1], device="meta", dtype=weight.dtype)
    ids = torch.randint(0, high, (num_prompts, length), generator=generator)
    return weight[ids].to(torch.float32).clone()


class TaskPrompts(nn.Module):
    """One trainable prompt [m, d] per task, picked per example by task id; or, `shared`, one
    prompt [1, m, d] that every task reads (SPoT-g's mixture prompt, the SPoT MT baselines)."""

    def __init__(self, init: torch.Tensor, shared: bool = False) -> None:
        super().__init__()
        if init.dim() != 3:
            raise ValueError(f"prompt init must be [tasks, m, d], got {tuple(init.shape)}")
        self.shared = shared
        self.weight = nn.Parameter((init[:1] if shared else init).clone())

    def forward(self, input_embeds, attention_mask, task_ids):
        return self.weight[torch.zeros_like(task_ids) if self.shared else task_ids], None


def save_prompt(path: str | Path, prompt: torch.Tensor, *, task: str, backbone: str,
                extra: dict | None = None) -> Path:
    """Save one prompt [m, d] with its metadata (atomic: temp file then rename).

    A `.safetensors` path gets a safetensors file; any other suffix the older torch format."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"task": task, "backbone": backbone, "d_model": int(prompt.shape[1]),
            "prompt_length": int(prompt.shape[0]), **(extra or {})}
    tensor = prompt.detach().cpu().float().contiguous()
    with atomic_path(path) as tmp:
        if path.suffix == PROMPT_SUFFIX:
            save_file({"prompt": tensor}, str(tmp), metadata={META_KEY: json.dumps(meta), "format": "pt"})
        else:
            torch.save({"prompt": tensor, "meta": meta}, tmp)
    return path


def add_to_library(library: str | Path, prompt: torch.Tensor, *, task: str, backbone: str,
                   extra: dict | None = None) -> Path:
    """Save `prompt` as `<library>/<task>.safetensors` and record it in the library's index."""
    library = Path(library)
    file = save_prompt(library / f"{task}{PROMPT_SUFFIX}", prompt, task=task, backbone=backbone, extra=extra)
    index_path = library / LIBRARY_INDEX
    index = library_index(library) if index_path.exists() else {"prompts": {}}
    replaced = index["prompts"].get(task, {}).get("file")
    index.update(backbone=backbone, d_model=int(prompt.shape[1]),
                 prompt_length=int(prompt.shape[0]))
    index["prompts"][task] = {"file": file.name, **(extra or {})}
    write_json_atomic(index_path, index)
    if replaced and replaced != file.name:  # an older `.pt` of this task, no longer indexed
        (library / replaced).unlink(missing_ok=True)
    return file


def read_prompt(path: str | Path) -> tuple[torch.Tensor, dict]:
    """(prompt [m, d], metadata) of a saved prompt, safetensors or the older torch file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"source prompt file {path} does not exist")
    try:
        if path.suffix == PROMPT_SUFFIX:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                prompt = handle.get_tensor("prompt")
                meta = json.loads((handle.metadata() or {})[META_KEY])
        else:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            prompt, meta = saved["prompt"], saved["meta"]
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path} is not a saved prompt ({type(err).__name__}: {err})") from None
    return prompt, meta


def load_prompt(path: str | Path, *, backbone: str, d_model: int, prompt_length: int) -> torch.Tensor:
    path = Path(path)
    prompt, meta = read_prompt(path)
    if meta.get("backbone") != backbone:
        raise UserError(
            f"source prompt {path} was trained on {meta.get('backbone')!r}, not {backbone!r}; "
            f"train source prompts for {backbone} first (attempt-dist pipeline --stages sources)"
        )
    expected = (prompt_length, d_model)
    if tuple(prompt.shape) != expected:
        raise UserError(
            f"source prompt {path} has shape {tuple(prompt.shape)}, expected {expected} "
            f"(prompt length x d_model of {backbone}); use --prompt-length {prompt.shape[0]} "
            "or retrain the source prompts"
        )
    return prompt.float()


def library_index(library: str | Path) -> dict:
    """library.json: {"backbone", "d_model", "prompt_length", "prompts": {name: {"file", ...}}}."""
    index_path = Path(library) / LIBRARY_INDEX
    if not index_path.exists():
        raise UserError(
            f"{library} is not a prompt library (no {LIBRARY_INDEX}); build one with "
            "`attempt-dist pipeline --stages sources`"
        )
    rebuild = "rebuild the library with `attempt-dist pipeline --stages sources`"
    try:
        index = json.loads(index_path.read_text())
    except ValueError as err:  # bad JSON or bytes
        raise UserError(f"{index_path} is not a prompt-library index ({type(err).__name__}: {err}); {rebuild}") from None
    if not isinstance(index, dict) or not isinstance(index.get("prompts"), dict):
        held = f"a JSON {type(index).__name__}" if not isinstance(index, dict) else "no \"prompts\" mapping"
        raise UserError(f"{index_path} is not a prompt-library index: it holds {held}, not "
                        f"{{\"prompts\": {{name: {{\"file\": ...}}}}, ...}}; {rebuild}")
    if not all(isinstance(entry, dict) for entry in index["prompts"].values()):
        raise UserError(f"{index_path}: each entry of \"prompts\" must be a mapping ({{\"file\": ...}}); {rebuild}")
    return index


def library_names(library: str | Path) -> list[str]:
    """The prompt names saved in a library, in a stable (sorted) order."""
    return sorted(library_index(library)["prompts"])


def load_library(library: str | Path, names: list[str] | None, *, backbone: str, d_model: int,
                 prompt_length: int) -> tuple[list[str], torch.Tensor]:
    """(names, prompts [t, m, d]) for `names` (all of the library's when None)."""
    entries = library_index(library)["prompts"]
    available = sorted(entries)
    if not available:
        raise UserError(f"prompt library {library} holds no prompts; build them with "
                        "`attempt-dist pipeline --stages sources`")
    names = list(names) if names else available
    missing = [n for n in names if n not in available]
    if missing:
        raise UserError(
            f"prompt library {library} has no prompt for {', '.join(missing)}; "
            f"it holds: {', '.join(available) or 'nothing'}"
        )
    prompts = [load_prompt(Path(library) / entries[n].get("file", f"{n}.pt"), backbone=backbone, d_model=d_model,
                           prompt_length=prompt_length) for n in names]
    return names, torch.stack(prompts)
