"""The paper's source library as the runs read it: B.1's priors, B.5's probe lengths, SPoT-t's
ranking over several probes, SPoT MT's one shared prompt, per-task target-prompt init."""

import pytest
import torch

from attempt_dist.library import sources as lib
from attempt_dist.errors import UserError
from attempt_dist.methods.attempt import target_init
from attempt_dist.methods.prompts import add_to_library, read_prompt, vocab_init
from attempt_dist.methods import MethodInputs, apply_method, make_config
from attempt_dist.methods.spot import (Config as SpotConfig, load_probes, most_similar, per_token_similarities,
                                       similarities, targeted_init)
from attempt_dist.model.params import count_trainable
from attempt_dist.training.config import TrainConfig
from tests.model_helpers import batch, tiny_backbone, wrap

SIX = ["mnli", "sst2", "qqp", "qnli", "squad", "record"]


def test_b1_priors_b5_probe_epochs():
    assert lib.default_sources() == SIX
    assert lib.prior_sources("glue", SIX) == ["mnli", "sst2", "qqp", "qnli"]
    assert lib.prior_sources("qa", SIX) == ["squad", "record"]
    assert lib.buildable_priors(["mnli", "sst2"]) == ["glue"]
    assert lib.prior_sources("glue", ["squad"]) == ["squad"]  # a library without the GLUE group
    assert lib.prior_for(["newsqa"]) == "qa" and lib.prior_for(["nq", "hotpotqa"]) == "qa"
    assert lib.prior_for(["boolq"]) == "glue" and lib.prior_for(["boolq", "newsqa"]) == "glue"
    assert lib.prior_for(["newsqa"], available=["glue"]) == "glue"
    assert str(lib.prior_file("O", "glue")) == "O/prior/prior.pt" and str(lib.prior_file("O", "qa")) == "O/prior/qa.pt"
    # B.5: 20 epochs under 10k training examples (MultiRC's 5.1k questions), 5 above.
    assert {t: lib.probe_epochs(t) for t in ("cb", "boolq", "multirc", "yelp", "paws", "newsqa")} == {
        "cb": 20.0, "boolq": 20.0, "multirc": 20.0, "yelp": 5.0, "paws": 5.0, "newsqa": 5.0}
    with pytest.raises(UserError, match="unknown attention prior 'mrqa'"):
        lib.prior_sources("mrqa", SIX)


def test_spot_t_ranks_sources_by_mean_cosine_over_a_runs_probes():
    sources = torch.stack([torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[-1.0, 0.0]])])
    probes = torch.stack([torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])])
    # mean cosine: s0 (1 + 1/sqrt2) / 2, s1 (0 + 1/sqrt2) / 2, s2 (-1 - 1/sqrt2) / 2
    c0, c1 = (1 + 2 ** -0.5) / 2, (2 ** -0.5) / 2
    want = (c0 * sources[0] + c1 * sources[1]) / (c0 + c1)
    torch.testing.assert_close(targeted_init(sources, probes, top_k=2), want)
    torch.testing.assert_close(targeted_init(sources, probes[1], top_k=2), (sources[0] + sources[1]) / 2)


def test_spot_t_selects_one_source_by_spots_average_token_cosine():
    """B.5 selects one source; SPoT compares prompts as task embeddings (mean of the tokens), so
    a probe whose rows are a permutation of a source's is that source's task. The flattened
    cosine (the old ranking) scores it 0 and picked the other source."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    probe = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # a's rows, swapped
    sources = torch.stack([a, b])
    torch.testing.assert_close(similarities(sources, probe), torch.tensor([1.0, 2 ** -0.5]))
    assert torch.nn.functional.cosine_similarity(a.flatten(), probe.flatten(), dim=0) == 0  # what flattening saw
    torch.testing.assert_close(per_token_similarities(sources, probe), torch.tensor([0.5, 0.5]))
    assert SpotConfig().top_k == 1
    assert most_similar(["a", "b"], sources, probe) == "a"
    torch.testing.assert_close(targeted_init(sources, probe, top_k=SpotConfig().top_k), a)


def test_single_prompt_ablation_keeps_the_source_spot_t_selects():
    backbone = tiny_backbone(0)
    d = backbone.config.d_model
    sources = torch.randn(3, 4, d, generator=torch.Generator().manual_seed(3))
    cfg = make_config("attempt", prompt_length=4, bottleneck=2, ablation="single_prompt")
    assert cfg.single_source == "auto"
    inputs = MethodInputs(source_names=["mnli", "squad", "qqp"], source_prompts=sources)
    with pytest.raises(UserError, match="--spot-probe"):
        apply_method("attempt", backbone, cfg, inputs)
    inputs.probes = sources[2:3].flip(1)  # qqp's rows reversed: the same task embedding
    model = apply_method("attempt", backbone, cfg, inputs)
    torch.testing.assert_close(model.prompt.sources, sources[2:3])
    # predict rebuilds the run from its artefact: the one source it kept, and no probe
    rebuilt = apply_method("attempt", backbone, cfg, MethodInputs(source_names=["qqp"], source_prompts=sources[2:3]))
    assert rebuilt.prompt.source_names == ["qqp"]


def test_spot_mt_shares_one_prompt_and_counts_a_quarter_per_task():
    model, _ = wrap("spot", num_tasks=3, shared_prompt=True)
    assert model.prompt.weight.shape[0] == 1
    prompts, _ = model.prompt(None, None, torch.tensor([0, 2, 1]))
    assert torch.equal(prompts[0], prompts[1]) and torch.equal(prompts[0], prompts[2])
    model(**batch(num_tasks=3)).loss.backward()  # every task's loss reaches the one prompt
    assert model.prompt.weight.grad is not None
    # Table 2: SPoT-g MT stores 19k parameters per task (77k over the 4 tasks of a group).
    assert count_trainable("t5-base", "spot", num_tasks=4, shared_prompt=True).per_task == 76_800 / 4
    assert count_trainable("t5-base", "spot", num_tasks=4).per_task == 76_800


def _library(folder, names, m=4, d=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    for name in names:
        add_to_library(folder, torch.randn(m, d, generator=g), task=name, backbone="t5-tiny")
    return folder


def test_target_prompts_fall_back_to_vocabulary_per_task(tmp_path):
    names = ["mnli", "sst2"]  # no SQuAD: the QA target cannot start from it
    prompts = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(3))
    backbone = tiny_backbone()
    cfg = TrainConfig(model="t5-tiny", method="attempt", tasks=["boolq", "newsqa"], seed=7)
    init = target_init(cfg, names, prompts, backbone.get_input_embeddings())
    assert init.shape == (2, 4, 32)
    torch.testing.assert_close(init[0], prompts[0])  # BoolQ still starts from MNLI
    vocab = vocab_init(backbone.get_input_embeddings(), 2, 4, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(init[1], vocab[1])  # NewsQA: the rows vocabulary init gives it
    only_qa = TrainConfig(model="t5-tiny", method="attempt", tasks=["newsqa"], seed=7)
    assert target_init(only_qa, names, prompts, backbone.get_input_embeddings()) is None
    explicit = TrainConfig(model="t5-tiny", method="attempt", tasks=["boolq"], target_init="squad")
    with pytest.raises(UserError, match="'squad' is not in the library"):
        target_init(explicit, names, prompts)


def test_spot_probe_is_a_file_or_a_probe_library(tmp_path):
    probes = _library(tmp_path / "probes", ["boolq", "cb", "rte"])
    cfg = TrainConfig(model="t5-tiny", method="spot", tasks=["rte", "boolq"], spot_probe=str(probes))
    got = load_probes(cfg, 32, 4)
    want = [read_prompt(probes / f"{t}.safetensors")[0] for t in ("rte", "boolq")]
    assert got.shape == (2, 4, 32) and torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    one = TrainConfig(model="t5-tiny", method="spot", tasks=["cb"], spot_probe=str(probes / "cb.safetensors"))
    assert load_probes(one, 32, 4).shape == (1, 4, 32)
    missing = TrainConfig(model="t5-tiny", method="spot", tasks=["wic"], spot_probe=str(probes))
    with pytest.raises(UserError, match="no prompt for wic"):
        load_probes(missing, 32, 4)


@pytest.mark.parametrize("argv,message", [
    (["--sources", "mnli,sst2", "--priors", "qa", "--stages", "prior"],
     "prior 'qa' trains on source_qa source tasks, and the library (mnli, sst2) holds none"),
    (["--stages", "sources,probes"], "the probes stage needs --targets"),
    (["--source-epochs", "0", "--stages", "sources"], "--source-epochs must be positive, got 0.0"),
])
def test_pipeline_refuses_bad_library_input_before_training(tmp_path, capsys, argv, message):
    from attempt_dist.library import pipeline

    assert pipeline.main(["--model", "t5-tiny", "--output-dir", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_train_config_single_prompt_reads_the_targets_probe(tmp_path):
    """`train --method attempt --ablation single_prompt --spot-probe PIPELINE/probes`: the run
    keeps the library prompt SPoT-t would select for its task (as the ablation sweep passes it)."""
    from attempt_dist.model.build import build_model

    sources = _library(tmp_path / "prompts", ["mnli", "squad", "qqp"], seed=1)
    probe = read_prompt(sources / "squad.safetensors")[0].flip(0)  # squad's rows reversed: its task embedding
    add_to_library(tmp_path / "probes", probe, task="cb", backbone="t5-tiny")
    cfg = TrainConfig(model="t5-tiny", method="attempt", tasks=["cb"], source_prompts=str(sources),
                      spot_probe=str(tmp_path / "probes"),
                      options={"prompt_length": 4, "bottleneck": 2, "ablation": "single_prompt"})
    model, _ = build_model(cfg, tiny_backbone(0))
    assert model.prompt.source_names == ["squad"]
    torch.testing.assert_close(model.prompt.sources[0], read_prompt(sources / "squad.safetensors")[0])
