"""What a run's evaluations leave besides result.json: each split's predictions and ATTEMPT's
attention weights (Figure 5). The trained parameters are the artefact's (artifacts.py)."""

from __future__ import annotations

from pathlib import Path

from ..atomic_files import write_json_atomic, write_jsonl_atomic


def save_predictions(out: Path, split: str, eval_data, predictions: dict) -> None:
    rows = []
    for data in eval_data:
        examples = sorted(data.examples, key=lambda e: e.index)
        for example, prediction in zip(examples, predictions[data.task]):
            rows.append({"task": data.task, "index": example.index, "prediction": prediction,
                         "target": example.target, "answers": example.answers})
    write_jsonl_atomic(out / "predictions" / f"{split}.jsonl", rows)


def attention_prompt_names(module) -> list[str]:
    prompt = module.prompt
    names = list(prompt.source_names)
    return names + (["target"] if prompt.target is not None else [])


def save_attention(out: Path, split: str, module, attention: dict, eval_data) -> None:
    """attention/prompts.json (column names) and attention/<split>.jsonl (one line per instance)."""
    write_json_atomic(out / "attention" / "prompts.json", {"prompts": attention_prompt_names(module)})
    rows = []
    for data in eval_data:
        examples = sorted(data.examples, key=lambda e: e.index)
        for example, weights in zip(examples, attention[data.task]):
            rows.append({"task": data.task, "index": example.index, "weights": weights})
    write_jsonl_atomic(out / "attention" / f"{split}.jsonl", rows)
