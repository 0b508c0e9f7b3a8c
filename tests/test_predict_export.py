"""After training: predict from the artefact alone, PEFT export, older runs, --config files.

Each run is a few steps of t5-tiny; the predictions compared are the run's own
predictions/test.jsonl (and attention/test.jsonl), written by its evaluation."""

import json
import shutil

import pytest
import torch

import attempt_dist
from attempt_dist.finished.artifacts import LEGACY_FILE, META_FILE, WEIGHTS_FILE, read_artifact, read_trainable
from attempt_dist.data import load_task_splits
from attempt_dist.errors import UserError
from attempt_dist.tasks import get_task
from attempt_dist.tasks.formats import input_text
from tests.train_helpers import DATA, TINY, launch, make_library, result

pytestmark = pytest.mark.slow
EVAL = ["--max-eval-examples", "8"]  # after TINY's 2: the later flag wins


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def raw_test_rows(task: str, n: int = 8) -> list[dict]:
    """The run's test inputs as hub rows with their labels removed, in test-split order."""
    spec = get_task(task)
    raw = jsonl(DATA / task / "validation.jsonl")
    by_input = {input_text(spec, row): row for row in raw}
    examples = load_task_splits(task, DATA, seed=42)["test"][:n]
    return [{k: v for k, v in by_input[e.source].items() if k != "label"} for e in examples]


class Proc:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args, check=True):
    """`attempt-dist ARGS` in this process (the console script's own main), its output captured."""
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from attempt_dist.cli import main

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:  # --help
            code = stop.code or 0
    proc = Proc(code, out.getvalue(), err.getvalue())
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def finetune_run(tmp_path_factory):
    # Fine-tuning learns within 20 steps to write label words for some inputs: predictions that
    # differ between inputs (a random prompt run writes only empty strings).
    out = tmp_path_factory.mktemp("ft") / "run"
    launch([*TINY, *EVAL, "--method", "finetune", "--tasks", "rte", "--max-steps", "20", "--lr", "0.005",
            "--no-checkpoints", "--output-dir", str(out)])
    return out


@pytest.fixture(scope="module")
def prompt_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prompt") / "run"
    launch([*TINY, "--method", "prompt", "--tasks", "rte", "--max-steps", "2", "--no-checkpoints",
            "--output-dir", str(out)])
    return out


def test_predict_cli_reproduces_the_runs_test_predictions(finetune_run, tmp_path):
    rows = raw_test_rows("rte")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("predict", finetune_run, "--input", tmp_path / "in.jsonl", "--output", tmp_path / "out.jsonl", "--device", "cpu")
    ours = [r["prediction"] for r in jsonl(tmp_path / "out.jsonl")]
    own = [r["prediction"] for r in sorted(jsonl(finetune_run / "predictions" / "test.jsonl"), key=lambda r: r["index"])]
    assert len(set(own)) > 1  # the model's output depends on its input: the comparison can fail
    assert ours == own
    card = (finetune_run / "README.md").read_text()
    assert "finetune on rte" in card and "| test | rte | accuracy |" in card
    # --text: one input as the model reads it
    first = input_text(get_task("rte"), rows[0])
    proc = cli("predict", finetune_run, "--text", first, "--task", "rte", "--device", "cpu")
    assert json.loads(proc.stdout)["prediction"] == own[0]


def test_predict_rejects_bad_input_with_one_line(finetune_run, tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps({"task": "rte", "sentence1": "a"}) + "\n")
    proc = cli("predict", finetune_run, "--input", tmp_path / "in.jsonl", check=False)
    assert proc.returncode == 2 and "row 1: a rte row needs sentence2" in proc.stderr
    proc = cli("predict", finetune_run, "--text", "cb premise: a hypothesis: b", "--task", "cb", check=False)
    assert proc.returncode == 2 and "task 'cb' is not one this run was trained on (rte)" in proc.stderr
    proc = cli("predict", tmp_path, "--text", "x", check=False)
    assert proc.returncode == 2 and "holds no trained parameters" in proc.stderr


def test_attempt_run_predicts_after_its_library_is_deleted(tmp_path):
    library = make_library(tmp_path / "prompts")
    out = tmp_path / "run"
    launch([*TINY, *EVAL, "--method", "attempt", "--tasks", "rte,cb", "--source-prompts", str(library),
            "--max-steps", "2", "--no-checkpoints", "--output-dir", str(out)])
    meta = json.loads((out / META_FILE).read_text())
    assert meta["source_prompts"] == ["mnli", "squad", "sst2"] and meta["tasks"] == ["rte", "cb"]
    assert meta["library"]["prompts"] == {"mnli": {"file": "mnli.safetensors"}, "squad": {"file": "squad.safetensors"},
                                          "sst2": {"file": "sst2.safetensors"}}
    shutil.rmtree(library)

    run = attempt_dist.load_run(out, device="cpu")
    own = {(r["task"], r["index"]): r for r in jsonl(out / "predictions" / "test.jsonl")}
    weights = {(r["task"], r["index"]): r["weights"] for r in jsonl(out / "attention" / "test.jsonl")}
    assert run.attention_prompts == json.loads((out / "attention" / "prompts.json").read_text())["prompts"]
    # Both tasks interleaved: one backbone, mixed-task batches, each row with its own task's prompt.
    keys = [k for pair in zip(sorted(k for k in own if k[0] == "rte"), sorted(k for k in own if k[0] == "cb"))
            for k in pair]
    texts = {t: {e.index: e.source for e in load_task_splits(t, DATA, seed=42)["test"][:8]} for t in ("rte", "cb")}
    got = run.predict([texts[t][i] for t, i in keys], [t for t, _ in keys])
    assert [g["prediction"] for g in got] == [own[k]["prediction"] for k in keys]
    for g, k in zip(got, keys):
        assert list(g["attention"]) == run.attention_prompts
        assert g["attention"] == pytest.approx(dict(zip(run.attention_prompts, weights[k])), abs=1e-6)
    assert len({tuple(w) for w in weights.values()}) > 1  # instance-wise: the comparison can fail

    # An older run of this kind (trainable.pt without the source prompts) names what is missing.
    legacy = tmp_path / "legacy"
    shutil.copytree(out, legacy)
    state = {k: v for k, v in read_artifact(out).state.items() if k != "prompt.sources"}
    torch.save({"state": state, "meta": {k: meta[k] for k in ("backbone", "method", "tasks", "options")}},
               legacy / LEGACY_FILE)
    (legacy / WEIGHTS_FILE).unlink()
    (legacy / META_FILE).unlink()
    with pytest.raises(UserError, match="older ATTEMPT run .* its prompt library .* is gone"):
        attempt_dist.load_run(legacy, device="cpu")


def test_older_pt_run_still_loads_and_converts(finetune_run, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(finetune_run, legacy)
    artifact = read_artifact(finetune_run)
    torch.save({"state": artifact.state, "meta": {k: artifact.meta[k] for k in ("backbone", "method", "tasks", "options")}},
               legacy / LEGACY_FILE)
    (legacy / WEIGHTS_FILE).unlink()
    (legacy / META_FILE).unlink()
    rows = raw_test_rows("rte")
    want = attempt_dist.load_run(finetune_run, device="cpu").predict_rows(rows)
    assert attempt_dist.load_run(legacy, device="cpu").predict_rows(rows) == want
    cli("export", legacy, tmp_path / "converted", "--format", "safetensors")
    converted = read_trainable(tmp_path / "converted")
    assert set(converted) == set(artifact.state)
    assert all(torch.equal(converted[k], artifact.state[k]) for k in converted)
    assert attempt_dist.load_run(tmp_path / "converted", device="cpu").predict_rows(rows) == want


def test_peft_export_reproduces_our_logits(prompt_run, tmp_path):
    peft = pytest.importorskip("peft")
    from attempt_dist.model.backbones import build_backbone
    from attempt_dist.data import Seq2SeqCollator, tokenize_examples

    cli("export", prompt_run, tmp_path / "adapter", "--format", "peft")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 4 and config["token_dim"] == 32

    ours = attempt_dist.load_run(prompt_run, device="cpu")
    base = build_backbone("t5-tiny", "random", seed=ours.cfg.seed)  # the run's frozen backbone
    adapted = peft.PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    examples = load_task_splits("rte", DATA, seed=42)["test"][:4]
    batch = Seq2SeqCollator(0)(tokenize_examples(examples, ours.tokenizer, 0, 64, 8))
    with torch.no_grad():
        want = ours.model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
                          task_ids=batch["task_ids"]).logits
        got = adapted(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).logits
        bare = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).logits
    assert torch.allclose(got, want, atol=1e-6, rtol=0)
    assert not torch.allclose(bare, want, atol=1e-3)  # the prompt changes the logits: the check can fail
    assert torch.equal(adapted.get_prompt(1)[0], read_trainable(prompt_run)["prompt.weight"][0])


def test_methods_without_a_peft_form_say_why(finetune_run, tmp_path):
    proc = cli("export", finetune_run, tmp_path / "x", "--format", "peft", check=False)
    assert proc.returncode == 2 and "finetune runs have no PEFT form" in proc.stderr
    assert not (tmp_path / "x").exists()
    proc = cli("export", "--help")
    assert "attempt:" in proc.stdout.replace("\n", " ") and "input-dependent" in proc.stdout.replace("\n", " ")


def test_a_runs_config_json_reproduces_its_config_and_flags_override_it(prompt_run, tmp_path):
    from attempt_dist.training.recipe import main as train_main
    from attempt_dist.training.config import build_parser, config_from_args, parse_train_args

    saved = json.loads((prompt_run / "config.json").read_text())["train"]
    assert result(prompt_run)["config"] == saved
    again = config_from_args(parse_train_args(build_parser(), ["--config", str(prompt_run / "config.json")]))
    assert again.to_dict() == saved
    folder = config_from_args(parse_train_args(build_parser(), ["--config", str(prompt_run)]))
    assert folder.to_dict() == saved
    changed = config_from_args(parse_train_args(build_parser(), ["--config", str(prompt_run), "--lr", "0.05",
                                                                 "--tasks", "cb", "--prompt-length", "6"]))
    assert changed.to_dict() == {**saved, "lr": 0.05, "tasks": ["cb"], "prompt_length": 6}

    (tmp_path / "run.yaml").write_text("model: t5-tiny\nmethod: prompt\ntasks: rte,cb\nbatch-size: 3\nlr: 0.1\n")
    cfg = config_from_args(parse_train_args(build_parser(), ["--config", str(tmp_path / "run.yaml"), "--batch-size", "5"]))
    assert (cfg.tasks, cfg.batch_size, cfg.method_config().lr) == (["rte", "cb"], 5, 0.1)

    (tmp_path / "bad.yaml").write_text("model: t5-tiny\nbatchsize: 3\nlearning_rate: 1\n")
    with pytest.raises(UserError, match=r"unknown option\(s\) batchsize, learning_rate"):
        parse_train_args(build_parser(), ["--config", str(tmp_path / "bad.yaml")])
    assert train_main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_predict_says_when_predictions_are_empty(prompt_run):
    # Two steps of a random-weight prompt run: the model writes only its end token.
    proc = cli("predict", prompt_run, "--text", "rte sentence1: A dog ran. sentence2: An animal ran.", "--task", "rte")
    assert json.loads(proc.stdout)["prediction"] == ""
    assert "note: 1 of 1 predictions are empty" in proc.stderr


def test_the_safetensors_artefact_card_lists_only_what_it_holds(prompt_run, tmp_path):
    cli("export", prompt_run, tmp_path / "artefact", "--format", "safetensors")
    held = sorted(p.name for p in (tmp_path / "artefact").iterdir())
    assert held == ["README.md", "export-manifest.json", "trainable.json", "trainable.safetensors"]
    card = (tmp_path / "artefact" / "README.md").read_text()
    files = card.split("## Files")[1]
    assert "`trainable.safetensors`, `trainable.json`" in files and "`predictions/`, `attention/`" not in files
    assert "## Scores" in card  # the rest of the run's card is kept
