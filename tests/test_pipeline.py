"""The ATTEMPT pipeline end to end on t5-tiny: library, prior, target run, attention files."""

import json

import pytest
import torch

from attempt_dist.finished.artifacts import read_trainable
from attempt_dist.methods.prompts import read_prompt
from tests.train_helpers import REPO, TINY, launch

pytestmark = pytest.mark.slow
SMALL = [*TINY, "--max-steps", "3"]


def test_pipeline_leaves_library_prior_results_and_attention(tmp_path):
    out = tmp_path / "OUT"
    args = [*SMALL, "--sources", "mnli,sst2", "--targets", "boolq,cb", "--output-dir", str(out)]
    launch(args, script=REPO / "launch" / "pipeline.py")

    index = json.loads((out / "prompts" / "library.json").read_text())
    assert index["backbone"] == "t5-tiny" and index["d_model"] == 32 and index["prompt_length"] == 4
    assert set(index["prompts"]) == {"mnli", "sst2"}
    saved, meta = read_prompt(out / "prompts" / "mnli.safetensors")
    assert saved.shape == (4, 32) and meta["task"] == "mnli"
    trained = read_trainable(out / "sources" / "mnli")["prompt.weight"][0]
    assert torch.equal(saved, trained)  # the library holds the trained source prompt

    prior = torch.load(out / "prior" / "prior.pt", weights_only=False)
    assert set(prior["gate"]) == {"down.weight", "up.weight", "norm.weight", "norm.bias"}
    assert prior["meta"]["backbone"] == "t5-tiny"

    target = out / "targets" / "mt__boolq+cb"
    record = json.loads((target / "result.json").read_text())
    assert record["config"]["method"] == "attempt" and record["config"]["prior"].endswith("prior.pt")
    assert set(record["metrics"]["test"]) == {"boolq", "cb"}
    assert json.loads((target / "attention" / "prompts.json").read_text())["prompts"] == ["mnli", "sst2", "target"]
    rows = [json.loads(line) for line in (target / "attention" / "test.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"boolq", "cb"}
    assert all(len(r["weights"]) == 3 and abs(sum(r["weights"]) - 1) < 1e-5 for r in rows)
    again = launch(args, script=REPO / "launch" / "pipeline.py")  # everything done: skipped
    assert "pipeline done" in again.stdout and "train" not in again.stdout.replace("pipeline done", "")


def test_pipeline_bad_stage_and_missing_targets(tmp_path):
    proc = launch([*SMALL, "--stages", "sources,finetune", "--output-dir", str(tmp_path)],
                  script=REPO / "launch" / "pipeline.py", check=False)
    assert proc.returncode == 2 and "unknown stage finetune" in proc.stderr
    proc = launch([*SMALL, "--output-dir", str(tmp_path)], script=REPO / "launch" / "pipeline.py", check=False)
    assert proc.returncode == 2 and "needs --targets" in proc.stderr


def test_paper_library_priors_spot_g_probes_and_a_seven_column_attention(tmp_path):
    """The paper's whole library on t5-tiny, one step a stage: the six source prompts, B.1's two
    priors, SPoT-g's mixture prompt, SPoT-t's probes and initialisation, then ATTEMPT-ST on a
    classification and a QA target, each with its own prior."""
    from attempt_dist.methods import apply_method
    from attempt_dist.model.build import method_inputs
    from attempt_dist.training.config import TrainConfig

    six = ["mnli", "sst2", "qqp", "qnli", "squad", "record"]
    out = tmp_path / "OUT"
    small = [a if a != "3" else "1" for a in SMALL]  # one step a stage
    launch([*small, "--targets", "boolq,newsqa", "--single-task", "--output-dir", str(out),
            "--stages", "sources,prior,spot_g,probes,targets"], script=REPO / "launch" / "pipeline.py")

    library = json.loads((out / "prompts" / "library.json").read_text())
    assert set(library["prompts"]) == set(six)  # the default library: section 4.1's six
    source_cfg = json.loads((out / "sources" / "squad" / "result.json").read_text())["config"]
    assert source_cfg["epochs"] == 5.0 and source_cfg["tasks"] == ["squad"]  # B.3 (--max-steps caps this smoke run)

    glue, qa = (torch.load(out / "prior" / f, weights_only=False) for f in ("prior.pt", "qa.pt"))
    assert glue["meta"]["tasks"] == ["mnli", "sst2", "qqp", "qnli"] and glue["meta"]["sources"] == six
    assert qa["meta"]["tasks"] == ["squad", "record"]
    assert not torch.equal(glue["gate"]["down.weight"], qa["gate"]["down.weight"])

    spot_g = json.loads((out / "spot_g" / "library.json").read_text())["prompts"]
    assert list(spot_g) == ["spot_g"] and spot_g["spot_g"]["tasks"] == ["mnli", "sst2", "qqp", "qnli"]
    mixture = read_trainable(out / "spot_g" / "run")["prompt.weight"]
    assert mixture.shape == (1, 4, 32)  # one prompt for the whole mixture
    assert torch.equal(read_prompt(out / "spot_g" / "spot_g.safetensors")[0], mixture[0])

    probes = json.loads((out / "probes" / "library.json").read_text())["prompts"]
    assert set(probes) == {"boolq", "newsqa"}
    probe = read_prompt(out / "probes" / "boolq.safetensors")[0]
    sources = {n: read_prompt(out / "prompts" / f"{n}.safetensors")[0] for n in six}
    # SPoT's "cosine similarity of average tokens": the cosine of the mean prompt rows
    cosine = {n: float((p.mean(0) @ probe.mean(0)) / (p.mean(0).norm() * probe.mean(0).norm())) for n, p in sources.items()}
    assert probes["boolq"]["similarity"] == pytest.approx(cosine, abs=1e-5)
    best = max(cosine, key=cosine.get)
    cfg = TrainConfig(model="t5-tiny", method="spot", tasks=["boolq"], source_prompts=str(out / "prompts"),
                      spot_probe=str(out / "probes"),
                      options={"prompt_length": 4, "spot_mode": "targeted", "spot_top_k": 1})
    from attempt_dist.model.backbones import build_backbone

    spot_t = apply_method("spot", build_backbone("t5-tiny", "random"), cfg.method_config(), method_inputs(cfg, 32))
    torch.testing.assert_close(spot_t.prompt.weight.detach()[0], sources[best])  # SPoT-t: the best source

    for task, prior in (("boolq", "prior.pt"), ("newsqa", "qa.pt")):
        record = json.loads((out / "targets" / task / "result.json").read_text())
        assert record["config"]["prior"] == str(out / "prior" / prior)  # B.1: the QA prior for MRQA
        assert record["warmup_capped"] is True
    target = out / "targets" / "boolq"
    assert json.loads((target / "attention" / "prompts.json").read_text())["prompts"] == [*six, "target"]
    rows = [json.loads(line) for line in (target / "attention" / "test.jsonl").read_text().splitlines()]
    assert rows and all(len(r["weights"]) == 7 and abs(sum(r["weights"]) - 1) < 1e-5 for r in rows)
