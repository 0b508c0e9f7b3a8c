"""Predict with a finished run, on CPU or GPU, from its artefact alone.

    run = attempt_dist.load_run("runs/attempt-mt")            # any method
    run.predict(["boolq question: ... passage: ...", "cb premise: ... hypothesis: ..."],
                tasks=["boolq", "cb"])                         # one backbone, mixed-task batches
    -> [{"task": "boolq", "prediction": "True", "attention": {"mnli": 0.2, ..., "target": 0.1}}, ...]

    attempt-dist predict RUN --input rows.jsonl [--output predictions.jsonl]
    attempt-dist predict RUN --text "rte premise: ... hypothesis: ..." --task rte

The model is rebuilt from trainable.json (backbone, method, options, task order, source prompt
names) and loaded from trainable.safetensors; the backbone comes from where training took it
(the hub id, --model-path, or the seeded random weights of a test backbone). Inputs go through
the very tokenisation, truncation, length-sorted batching and greedy generation of the run's
own evaluation, so predicting the run's test inputs gives its test predictions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from .artifacts import Artifact, method_buffers, read_artifact
from .device import resolve_device
from .output_paths import check_predictions_output
from ..errors import UserError, one_line_errors


@dataclasses.dataclass
class LoadedRun:
    """A trained model ready to predict: the wrapped T5, its tokenizer and its training config."""

    model: torch.nn.Module
    tokenizer: object
    cfg: object
    meta: dict
    device: torch.device
    batch_size: int

    @property
    def tasks(self) -> list[str]:
        """The tasks the run was trained on, in task-id order."""
        return list(self.cfg.tasks)

    @property
    def attention_prompts(self) -> list[str] | None:
        """ATTEMPT: the names of the attention weights' columns (source prompts, then "target")."""
        prompt = getattr(self.model, "prompt", None)
        if not hasattr(prompt, "source_names"):
            return None
        return list(prompt.source_names) + (["target"] if prompt.target is not None else [])

    def predict(self, texts: str | list[str], tasks: str | list[str], *, batch_size: int | None = None,
                attention: bool = True) -> list[dict]:
        """One {"task", "prediction"[, "attention"]} per text, in the texts' order.

        texts: inputs as the model reads them ("rte premise: ... hypothesis: ..."; format hub
        rows with predict_rows). tasks: one task for every text, or one per text.
        """
        from ..data import Seq2SeqCollator, tokenize_examples
        from ..training.evaluate import length_order, max_new_tokens
        from ..tasks import Example, get_task

        texts = [texts] if isinstance(texts, str) else list(texts)
        tasks = [tasks] * len(texts) if isinstance(tasks, str) else list(tasks)
        if len(tasks) != len(texts):
            raise UserError(f"{len(texts)} texts but {len(tasks)} tasks; give one task, or one per text")
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise UserError(f"this run was trained on {', '.join(self.tasks)}; it has no prompt for "
                            f"{', '.join(unknown)}")
        if not texts:
            return []
        cfg = self.cfg
        features: list[dict | None] = [None] * len(texts)
        for task_id, task in enumerate(self.tasks):
            mine = [i for i, t in enumerate(tasks) if t == task]
            examples = [Example(task, texts[i], "", index=i) for i in mine]
            for i, feature in zip(mine, tokenize_examples(examples, self.tokenizer, task_id,
                                                          cfg.max_length or get_task(task).max_length,
                                                          cfg.max_target_length)):
                features[i] = feature
        collator = Seq2SeqCollator(self.tokenizer.pad_token_id)
        budget = {t: max_new_tokens(t, cfg.max_target_length, self.tokenizer) for t in set(tasks)}
        budget = [budget[t] for t in tasks]
        names = self.attention_prompts if attention else None
        results: list[dict | None] = [None] * len(texts)
        order = length_order(features)  # as evaluation batches: longest first, little padding
        size = batch_size or self.batch_size
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(order), size):
                rows = order[start:start + size]
                batch = {k: v.to(self.device) for k, v in collator([features[i] for i in rows]).items()}
                # One generate call for a mixed-task batch: each row is cut to its own task's
                # budget afterwards (greedy decoding is causal, so that equals generating less).
                generated = self.model.generate(batch["input_ids"], batch["attention_mask"],
                                                task_ids=batch["task_ids"], max_new_tokens=max(budget[i] for i in rows),
                                                do_sample=False, num_beams=1)
                weights = None
                if names:
                    _, _, weights = self.model.encoder_inputs(batch["input_ids"], batch["attention_mask"],
                                                              batch["task_ids"])
                for row, i in enumerate(rows):
                    text = self.tokenizer.decode(generated[row, : 1 + budget[i]], skip_special_tokens=True)
                    results[i] = {"task": tasks[i], "prediction": text.strip()}
                    if weights is not None:
                        results[i]["attention"] = dict(zip(names, weights[row].float().cpu().tolist()))
        return results

    def predict_rows(self, rows: list[dict], task: str | None = None, *, where=None, **kwargs) -> list[dict]:
        """Predict on rows: {"task", "input"} (the text as the model reads it) or a row in the
        task's hub schema (its fields, e.g. question and passage for boolq; labels not needed),
        formatted exactly as training formats it. `task` serves rows without one. Returns
        {"task", "input", "prediction"[, "attention"]} per row."""
        texts, tasks = rows_to_inputs(rows, task, self.tasks, where or (lambda i: f"row {i + 1}"))
        predictions = self.predict(texts, tasks, **kwargs)
        return [{"task": t, "input": x, **{k: v for k, v in p.items() if k != "task"}}
                for t, x, p in zip(tasks, texts, predictions)]


def rows_to_inputs(rows: list[dict], task: str | None, run_tasks: list[str], where) -> tuple[list[str], list[str]]:
    """(input texts, tasks) for input rows (see LoadedRun.predict_rows)."""
    from ..tasks import get_task
    from ..tasks.formats import GOLD_PLACEHOLDERS, input_text

    texts, tasks = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"{where(i)}: expected a JSON object, got {type(row).__name__}")
        name = row.get("task") or task or (run_tasks[0] if len(run_tasks) == 1 else None)
        if name is None:
            raise UserError(f"{where(i)}: no task given; pass --task (or a \"task\" key in --input rows): "
                            f"this run has {', '.join(run_tasks)}")
        if name not in run_tasks:
            raise UserError(f"{where(i)}: task {name!r} is not one this run was trained on "
                            f"({', '.join(run_tasks)})")
        if "input" in row:
            text = row["input"]
            if not isinstance(text, str):
                raise UserError(f"{where(i)}: \"input\" must be a string")
        else:
            spec = get_task(name)
            missing = [c for c in spec.columns if c not in row and c not in GOLD_PLACEHOLDERS[spec.formatter]
                       and c != "idx"]
            if missing:
                raise UserError(f"{where(i)}: a {name} row needs {', '.join(missing)} "
                                f"(or give the model's input text as \"input\")")
            try:
                text = input_text(spec, row)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
                raise UserError(f"{where(i)}: malformed {name} row: {err}") from None
        texts.append(text)
        tasks.append(name)
    return texts, tasks


def load_run(path: str | Path, *, device: str | torch.device = "auto", dtype: torch.dtype | str | None = None,
             model_path: str | None = None, batch_size: int | None = None) -> LoadedRun:
    """A finished run (any method) ready to predict, from its folder or an exported artefact.

    device: "auto" (a GPU when there is one), "cpu", "cuda", ... dtype: None (float32) or
    torch.bfloat16 / "bf16" on GPU. model_path: where the pretrained backbone lies on this
    machine, when not where training found it. batch_size: default the run's evaluation batch.
    """
    from ..data import load_tokenizer
    from ..training.evaluate import default_eval_batch_size
    from ..model.build import tokenizer_source
    from .artifacts import artifact_config

    device = resolve_device(device)  # a device that is not here is refused before reading the run
    artifact = read_artifact(path)
    cfg = artifact_config(artifact, Path(path))
    cfg = dataclasses.replace(cfg, activation_checkpointing=False, model_path=model_path or cfg.model_path)
    model = trained_model(cfg, artifact, Path(path))
    if dtype in ("bf16", "bfloat16"):
        dtype = torch.bfloat16
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    model.eval()
    tokenizer = load_tokenizer(tokenizer_source(cfg))
    return LoadedRun(model, tokenizer, cfg, artifact.meta, device,
                     batch_size or cfg.eval_batch_size or default_eval_batch_size(cfg.batch_size))


def trained_model(cfg, artifact: Artifact, where: Path) -> torch.nn.Module:
    """The wrapped model of `cfg` with the artefact's tensors loaded (CPU, float32)."""
    from ..model.build import build_model, load_backbone

    backbone = load_backbone(cfg, training=False)
    model, _ = build_model(cfg, backbone, rebuilt_inputs(cfg, artifact, backbone.config.d_model, where))
    state = dict(artifact.state)
    if artifact.legacy:  # an older run: its source prompts came from the library just read
        state = {**method_buffers(model), **state}
    expected = ({n for n, p in model.named_parameters() if p.requires_grad} | set(method_buffers(model)))
    lacking, extra = sorted(expected - set(state)), sorted(set(state) - set(model.state_dict()))
    if lacking or extra:
        raise UserError(f"{where}: the saved tensors do not fit the {cfg.method} model of this run's options "
                        f"(missing {', '.join(lacking) or 'none'}; unexpected {', '.join(extra) or 'none'})")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise UserError(f"{where}: the saved tensors do not fit the rebuilt {cfg.method} model: "
                        f"{str(err).splitlines()[-1].strip()}") from None
    return model


def rebuilt_inputs(cfg, artifact: Artifact, d_model: int, where: Path):
    """What the method's wrap needs, from the artefact. The trained tensors overwrite every
    initial value, so only shapes matter, except what the method rebuilds itself (its
    rebuilt_inputs: ATTEMPT's frozen source prompts, which travel in the artefact)."""
    from ..methods import MethodInputs, method_hook

    inputs = MethodInputs(num_tasks=len(cfg.tasks), seed=cfg.seed)
    names = artifact.meta.get("source_prompts")
    inputs.source_names = list(names) if names else None
    rebuild = method_hook(cfg.method, "rebuilt_inputs")
    return rebuild(cfg, inputs, artifact, d_model, where) if rebuild else inputs


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserError(f"--input {path} does not exist" if not path.exists() else f"--input {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"--input {path} is not UTF-8 text (byte {err.start}: {err.reason}); "
                        "save it as UTF-8 JSON lines") from None
    except OSError as err:
        raise UserError(f"--input {path} cannot be read ({err.strerror})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not a JSON line ({err.msg})") from None
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attempt-dist predict",
        description="Predict with a finished run (any method) on new inputs; writes JSON lines "
                    "{task, input, prediction[, attention]} (ATTEMPT: attention weights over its prompts).")
    parser.add_argument("run", help="a finished run's folder (or an exported safetensors artefact)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="FILE.jsonl",
                        help="one JSON object a line: a row in the task's hub schema (e.g. boolq: question, "
                             "passage; labels not needed), or {\"input\": TEXT} with the text as the model reads it; "
                             "\"task\" in the row or --task")
    source.add_argument("--text", help="one input, as the model reads it: e.g. \"rte premise: ... hypothesis: ...\"")
    parser.add_argument("--task", help="the task of --text, or of --input rows without one "
                                       "(default: the run's task when it has one)")
    parser.add_argument("--output", metavar="FILE.jsonl",
                        help="write predictions here, outside every run and sweep folder (default: print them)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1, ...")
    parser.add_argument("--bf16", action="store_true", help="run the model in bfloat16 (GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the run's evaluation batch")
    parser.add_argument("--model-path", default=None,
                        help="local folder with the pretrained backbone, when not where training found it")
    parser.add_argument("--no-attention", dest="attention", action="store_false",
                        help="ATTEMPT: do not write the attention weights")
    return parser


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    # Every input is checked before the model is built: the device, where the output goes, the rows.
    device = resolve_device(args.device)
    if args.output:
        check_predictions_output(args.output)
    if args.text is not None:
        rows = [{"input": args.text, **({"task": args.task} if args.task else {})}]
        where = lambda i: "--text"  # noqa: E731
    else:
        rows = _read_rows(Path(args.input))
        where = lambda i: f"{args.input} row {i + 1}"  # noqa: E731
    run = load_run(args.run, device=device, dtype=torch.bfloat16 if args.bf16 else None,
                   model_path=args.model_path, batch_size=args.batch_size)
    out = [{"index": i, **row} for i, row in
           enumerate(run.predict_rows(rows, args.task, where=where, attention=args.attention))]
    if args.output:
        from ..atomic_files import write_jsonl_atomic

        try:
            write_jsonl_atomic(args.output, out)
        except OSError as err:
            raise UserError(f"--output {args.output} cannot be written ({err.strerror}); choose another path") from None
        print(f"{len(out)} predictions -> {args.output}", file=sys.stderr, flush=True)
    else:
        for row in out:
            print(json.dumps(row), flush=True)
    empty = sum(row["prediction"] == "" for row in out)
    if empty:  # on stderr: stdout stays one JSON row per input
        print(f"note: {empty} of {len(out)} predictions are empty (the model generated only its end token, "
              "as an undertrained run does: a few steps or random weights); the run's result.json has its "
              "dev and test scores", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
