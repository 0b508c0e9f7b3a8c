"""What the README and an exported adapter's README promise runs as written.

The main README's first Training command makes runs/pt; every command and Python block of its
"After training" section then runs verbatim in that folder; the PEFT adapter that section
exports carries its own README whose Python block, run as written, builds a model whose
logits equal load_run's. Each `attempt-dist` line runs as a process, as a user's shell would.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest
import torch

from tests.paths import REPO

pytestmark = pytest.mark.slow
CODE_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def blocks(markdown: str, language: str) -> list[str]:
    return [code for lang, code in CODE_BLOCK.findall(markdown) if lang == language]


def section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end > 0 else None]


def commands(bash: str) -> list[list[str]]:
    """The block's `attempt-dist` command lines (comments dropped, continuation lines joined)."""
    joined = bash.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.startswith("attempt-dist ")]


def shell(argv: list[str], cwd) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "attempt_dist.cli", *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout}\n{done.stderr}"


def test_after_training_and_the_exported_adapter_readme_run_as_written(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    (tmp_path / "examples").symlink_to(REPO / "examples")
    train = next(c for c in commands(blocks(section(readme, "Training"), "bash")[0])
                 if c[1] == "train" and "runs/pt" in c)
    shell(train, tmp_path)
    after = section(readme, "After training")
    for argv in commands(blocks(after, "bash")[0]):
        shell(argv, tmp_path)
    assert (tmp_path / "predictions.jsonl").exists() and (tmp_path / "runs/pt-peft/rte/README.md").exists()

    monkeypatch.chdir(tmp_path)
    for code in blocks(after, "python"):
        exec(compile(code, "README.md (After training)", "exec"), {})

    import attempt_dist
    from attempt_dist.data import Seq2SeqCollator, load_task_splits, tokenize_examples

    ours = attempt_dist.load_run(tmp_path / "runs/pt", device="cpu")
    for task_id, task in enumerate(ours.cfg.tasks):
        card = (tmp_path / "runs/pt-peft" / task / "README.md").read_text()
        namespace = {}
        exec(compile(blocks(card, "python")[0], f"runs/pt-peft/{task}/README.md", "exec"), namespace)
        adapted = namespace["model"]
        examples = load_task_splits(task, REPO / "examples" / "data", seed=42)["test"][:4]
        batch = Seq2SeqCollator(0)(tokenize_examples(examples, ours.tokenizer, task_id, 64, 8))
        with torch.no_grad():
            want = ours.model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
                              task_ids=batch["task_ids"]).logits
            got = adapted(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          labels=batch["labels"]).logits
        assert torch.allclose(got, want, atol=1e-6, rtol=0), task


def test_atomic_writes_give_the_usual_mode_even_to_safetensors(tmp_path):
    from safetensors.torch import save_file

    from attempt_dist.atomic_files import atomic_path

    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_path(tmp_path / "w.safetensors") as tmp:
        save_file({"x": torch.zeros(1)}, str(tmp))  # safetensors alone creates 0600
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # 0644 under umask 022
