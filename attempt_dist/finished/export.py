"""`attempt-dist export RUN --format peft|safetensors OUT`: a finished run for other tools.

    peft         a run of a method whose Profile has a PEFT form (prompt tuning and SPoT: a
                 prompt-tuning adapter) -> adapter_config.json + adapter_model.safetensors that
                 `PeftModel.from_pretrained(t5, OUT)` loads and that gives our logits; a
                 multi-task run -> one adapter per task, OUT/<task>/.
    safetensors  the self-contained artefact (trainable.safetensors, trainable.json, README.md)
                 that `attempt-dist predict` and `attempt_dist.load_run` read; a run saved in the
                 older trainable.pt format is converted (ATTEMPT: its source prompts read from
                 its library, which must still exist).

OUT is a new or empty folder, or (--overwrite) an earlier export's: every export lists its files
in OUT/export-manifest.json and --overwrite removes only those; OUT is never, nor lies inside
or holds, a run or sweep folder (export_folder.py).

The method says how its run becomes PEFT adapters (methods/prompt.py's PromptTuningPeft) or
why it has no PEFT form (its Profile's not_in_peft, which the refusal quotes).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..errors import UserError, one_line_errors
from .export_folder import ExportTarget

PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"


def base_model(cfg) -> tuple[str, str]:
    """(what the adapter's base model is, the Python lines that build it as `base`).

    A pretrained run: its hub id or local folder, loaded with from_pretrained. A random-weight
    run (the test backbones, or --init random): the exact call that rebuilt its frozen backbone
    (model_setup.load_backbone), which an id cannot name."""
    from ..model.backbones import get_spec
    from ..model.build import init_mode

    if init_mode(cfg) == "pretrained":
        source = str(cfg.model_path or get_spec(cfg.model).pretrained_source)
        return source, ("from transformers import T5ForConditionalGeneration\n"
                        f"base = T5ForConditionalGeneration.from_pretrained({source!r})\n")
    call = f"build_backbone({cfg.model!r}, 'random', seed={cfg.seed!r})"
    return f"attempt_dist.model.backbones.{call}", f"from attempt_dist.model.backbones import build_backbone\nbase = {call}\n"


def export_peft(run: str | Path, out: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write the run's prompt(s) as PEFT prompt-tuning adapter(s); returns the adapter folders."""
    from safetensors.torch import save_file

    from .artifacts import artifact_config, read_artifact
    from ..atomic_files import atomic_path, write_json_atomic, write_text_atomic

    target = ExportTarget.check(out, run, overwrite)  # before reading the run
    artifact = read_artifact(run)
    cfg = artifact_config(artifact, Path(run))
    form = peft_form(cfg.method)
    adapters = form.adapters(cfg, artifact.state)
    single = len(adapters) == 1
    folders = []
    with target.staged("peft") as tmp:
        for task, tensors, adapter_config in adapters:
            folder = tmp if single else tmp / task
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / PEFT_WEIGHTS) as weights:  # atomic_path also gives it the usual mode
                save_file(tensors, str(weights), metadata={"format": "pt"})
            # The base model is the run's, not the method's: filled in here for every PEFT form.
            write_json_atomic(folder / PEFT_CONFIG, {**adapter_config, "base_model_name_or_path": base_model(cfg)[0]})
            final = Path(out) if single else Path(out) / task
            write_text_atomic(folder / "README.md", _peft_card(cfg, task, run, final, form.kind))
            folders.append(final)
    return folders


def peft_form(method: str):
    """How a run of `method` exports to PEFT (its Profile's peft); a UserError saying why not
    where it has no PEFT form."""
    from ..methods import METHODS, profile

    chosen = profile(method)
    if chosen.peft is None:
        exporting = [m for m in METHODS if profile(m).peft is not None]
        raise UserError(f"{method} runs have no PEFT form: {chosen.not_in_peft}; "
                        f"PEFT export works for {', '.join(exporting)} runs (use --format safetensors)")
    return chosen.peft


def _peft_card(cfg, task: str, run, folder: Path, kind: str) -> str:
    """The adapter's README: what it is and Python lines that load it, runnable as written."""
    base, build = base_model(cfg)
    return (f"# PEFT {kind} adapter: {cfg.method} on {task}\n\n"
            f"Exported by attempt-dist from the run {Path(run).resolve()} (backbone {cfg.model}: {base}).\n\n"
            f"```python\n{build}from peft import PeftModel\n"
            f"model = PeftModel.from_pretrained(base, {str(folder.resolve())!r}).eval()\n"
            "```\n\nInputs are formatted as in training, e.g. "
            f"\"{task} <field>: ... <field>: ...\" (see `attempt-dist tasks`), and tokenized with the "
            "run's tokenizer (`attempt_dist.load_run(RUN).tokenizer`).\n")


def export_safetensors(run: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """The self-contained artefact of a run in `out` (an older trainable.pt run converted)."""
    from .artifacts import CARD_FILE, META_FILE, WEIGHTS_FILE, Artifact, artifact_config, read_artifact, write_artifact
    from ..atomic_files import write_text_atomic

    run = Path(run)
    target = ExportTarget.check(out, run, overwrite)  # before reading the run
    artifact = read_artifact(run)
    if artifact.legacy:  # rebuild it to gather what the old file lacked (ATTEMPT's source prompts)
        import dataclasses

        from .artifacts import method_buffers
        from .predict import trained_model

        cfg = artifact_config(artifact, run)
        model = trained_model(dataclasses.replace(cfg, activation_checkpointing=False), artifact, run)
        artifact = Artifact({**artifact.state, **method_buffers(model)}, _legacy_meta(cfg, model))
    with target.staged("safetensors") as tmp:
        if artifact.legacy is False and (run / WEIGHTS_FILE).exists():
            shutil.copyfile(run / WEIGHTS_FILE, tmp / WEIGHTS_FILE)
            shutil.copyfile(run / META_FILE, tmp / META_FILE)
        else:
            write_artifact(tmp, artifact)
        if (run / CARD_FILE).exists():
            write_text_atomic(tmp / CARD_FILE, _artefact_card((run / CARD_FILE).read_text(), run))
    return Path(out)


def _artefact_card(run_card: str, run: Path) -> str:
    """The run's model card with its Files section saying what the artefact holds: only the
    tensors, their metadata and this card (the run record and predictions stay with the run)."""
    from .artifacts import META_FILE, WEIGHTS_FILE

    head = run_card.split("\n## Files\n")[0].rstrip("\n")
    return (f"{head}\n\n## Files\n\n"
            f"- `{WEIGHTS_FILE}`, `{META_FILE}`: the trained tensors and what rebuilds the model around them\n"
            f"- exported from {run.resolve()}, which keeps `config.json`, `result.json`, `predictions/`\n")


def _legacy_meta(cfg, model) -> dict:
    """trainable.json for an older run rebuilt as `model`."""
    import dataclasses

    from .artifacts import artifact_meta
    from ..methods.prompts import LIBRARY_INDEX

    library = cfg.source_prompts
    if library and not (Path(library) / LIBRARY_INDEX).exists():  # SPoT's library gone: names unknown
        meta = artifact_meta(dataclasses.replace(cfg, source_prompts=None), model)
        return {**meta, "train": cfg.to_dict()}
    return artifact_meta(cfg, model)


def build_parser() -> argparse.ArgumentParser:
    from ..methods import METHODS, profile

    exporting = " and ".join(m for m in METHODS if profile(m).peft is not None)
    refused = "; ".join(f"{m}: {profile(m).not_in_peft}" for m in METHODS if profile(m).peft is None)
    parser = argparse.ArgumentParser(
        prog="attempt-dist export",
        description=f"Export a finished run: --format peft ({exporting} runs) writes a PEFT "
                    "adapter that PeftModel.from_pretrained loads; --format safetensors writes the self-contained "
                    "artefact that `attempt-dist predict` reads.",
        epilog=f"Not expressible in PEFT - {refused}.")
    parser.add_argument("run", help="a finished run's folder")
    parser.add_argument("out", help="the folder to create (a multi-task prompt run: one adapter per task in OUT/<task>/)")
    parser.add_argument("--format", required=True, choices=("peft", "safetensors"))
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in OUT: only the files its export-manifest.json lists")
    return parser


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.format == "peft":
        for folder in export_peft(args.run, args.out, overwrite=args.overwrite):
            print(f"PEFT adapter -> {folder}", flush=True)
    else:
        print(f"artefact -> {export_safetensors(args.run, args.out, overwrite=args.overwrite)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
