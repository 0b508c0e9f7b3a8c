"""The ATTEMPT pipeline end to end on t5-tiny: library, prior, target run, attention files."""

import json

import pytest
import torch

from attempt_dist.artifacts import read_trainable
from attempt_dist.methods.prompts import read_prompt
from tests.train_helpers import DATA, REPO, launch

pytestmark = pytest.mark.slow
SMALL = ["--model", "t5-tiny", "--data-dir", str(DATA), "--prompt-length", "4", "--rank", "4",
         "--batch-size", "2", "--max-eval-examples", "2", "--max-target-length", "8", "--eval-every", "1000",
         "--max-length", "64", "--max-steps", "3"]


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
