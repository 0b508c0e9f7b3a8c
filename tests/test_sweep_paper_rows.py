"""The shipped paper sweeps run the paper's experiments row for row: every row of Tables 2-3
(single-task and multi-task), ATTEMPT over the six-prompt library, SPoT-g from the mixture
prompt, SPoT-t from its probes, each ATTEMPT cell with the prior B.1 gives it, the Table 4
and Figure 4 settings. Rows and settings are copied by hand from the paper."""

from pathlib import Path

import pytest

from attempt_dist import cli
from attempt_dist.sweep import load_sweep
from attempt_dist.sweep.submit import library_args, library_argv
from attempt_dist.sweep.spec import train_argv
from tests.paths import REPO

SIX = ("mnli", "sst2", "qqp", "qnli", "squad", "record")  # section 4.1
RUN = Path("/runs/x")

# (row variant, multitask) -> tasks or groups, from Tables 2 and 3 (MultiRC's MT cells reuse its
# single-task runs, B.6).
GLUE_SG = ["wnli", "stsb", "mrpc", "rte", "multirc", "boolq", "wic", "wsc", "cb"]
TABLE2 = {**{(v, False): set(GLUE_SG) for v in ("finetune", "adapter", "bitfit", "prompt", "spot-g", "spot-t", "attempt")},
          **{(v, True): {"glue", "superglue"} for v in ("finetune", "adapter", "spot-g", "attempt")}}
MRQA_OTHERS = ["nq", "hotpotqa", "searchqa", "newsqa", "winogrande", "yelp", "scitail", "paws"]
TABLE3 = {**{(v, False): set(MRQA_OTHERS) for v in ("finetune", "adapter", "bitfit", "prompt", "spot-t", "attempt")},
          **{(v, True): {"mrqa", "others"} for v in ("finetune", "adapter", "spot-t", "attempt")}}


def _rows(sweep):
    rows: dict = {}
    for cell in sweep.cells:
        rows.setdefault((cell.variant, cell.multitask), set()).add(cell.task_label)
    return rows


def _argv(sweep, cell):
    return train_argv(cell, RUN / cell.name, library_args(RUN, cell, sweep.libraries.get(cell.library)))


def _flag(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else None


@pytest.mark.parametrize("path,table", [("launch/sweeps/glue_superglue.yaml", TABLE2),
                                        ("launch/sweeps/mrqa_others.yaml", TABLE3)])
def test_tables_2_3_every_row_from_one_six_prompt_library(path, table):
    sweep = load_sweep(REPO / path)
    assert _rows(sweep) == table
    assert len(sweep.libraries) == 1
    (lib,) = sweep.libraries.values()
    assert lib.sources == SIX and lib.epochs == 5.0 and lib.max_steps is None  # B.3: 5 epochs each
    argv = library_argv(lib, RUN / "lib")
    assert _flag(argv, "--source-epochs") == "5.0" and "--max-steps" not in argv
    spot_t_targets = {t for c in sweep.cells if c.variant == "spot-t" for t in c.tasks}
    assert set(lib.probes) >= spot_t_targets and set(_flag(argv, "--targets").split(",")) >= spot_t_targets
    for cell in sweep.cells:
        argv = _argv(sweep, cell)
        if cell.method == "attempt":
            assert _flag(argv, "--source-prompts") == f"{RUN}/library/{lib.key}/run/prompts"
            assert "--sources" not in argv  # every prompt of the library: all six
        if cell.method == "spot":
            assert "--shared-prompt" in argv  # SPoT MT: one prompt for the group
        if cell.variant == "spot-g":
            assert _flag(argv, "--spot-mode") == "generic"
            assert _flag(argv, "--source-prompts") == f"{RUN}/library/{lib.key}/run/spot_g"
        if cell.variant == "spot-t":
            assert _flag(argv, "--spot-mode") == "targeted"
            assert _flag(argv, "--source-prompts") == f"{RUN}/library/{lib.key}/run/prompts"
            assert _flag(argv, "--spot-probe") == f"{RUN}/library/{lib.key}/run/probes"
        if cell.method in ("finetune", "adapter", "bitfit", "prompt"):
            assert cell.library is None and "--source-prompts" not in argv


def test_attempt_cells_take_the_b1_prior_of_their_targets():
    sweep = load_sweep(REPO / "launch/sweeps/mrqa_others.yaml")
    (lib,) = sweep.libraries.values()
    assert lib.priors == ("glue", "qa")
    assert _flag(library_argv(lib, RUN), "--stages") == "sources,prior,spot_g,probes"
    assert _flag(library_argv(lib, RUN), "--priors") == "glue,qa"
    prior = {c.task_label: _flag(_argv(sweep, c), "--prior") for c in sweep.cells if c.method == "attempt"}
    for task in ("nq", "hotpotqa", "searchqa", "newsqa", "mrqa"):
        assert prior[task].endswith("/run/prior/qa.pt"), task       # SQuAD + ReCoRD
    for task in ("winogrande", "yelp", "scitail", "paws", "others"):
        assert prior[task].endswith("/run/prior/prior.pt"), task    # MNLI, SST-2, QQP, QNLI
    glue = load_sweep(REPO / "launch/sweeps/glue_superglue.yaml")
    (glue_lib,) = glue.libraries.values()
    assert glue_lib.priors == ("glue", "qa") and glue_lib.spot_g  # the one library of Tables 2-4
    assert _flag(library_argv(glue_lib, RUN), "--stages") == "sources,prior,spot_g,probes"


# Table 4, as the paper ran it (issue 19), copied by hand: task -> (epochs (4.3: 20 under 10k
# examples, 10 above, 5 for MRQA), gate lr (B.4: 0.1 for SuperGLUE and the Others multi-task run,
# 0.3 otherwise), max length (4.3), prior file (B.1)). ST cells train the task alone; MT rows come
# from B.6's group runs.
TABLE4_ST = {"boolq": (20, 0.1, 256, "prior.pt"), "newsqa": (5, 0.3, 512, "qa.pt"),
             "winogrande": (10, 0.3, 256, "prior.pt")}
TABLE4_MT = {"superglue": ((("boolq", "wic", "wsc", "cb")), 20, 0.1, 256, "prior.pt"),
             "mrqa": (("nq", "hotpotqa", "searchqa", "newsqa"), 5, 0.3, 512, "qa.pt"),
             "others": (("winogrande", "yelp", "scitail", "paws"), 10, 0.1, 256, "prior.pt")}
ST_VARIANTS = {"attempt", "attempt-no_target", "attempt-no_attention", "attempt-single_prompt", "attempt-no_prior"}


def test_table4_every_cell_with_the_papers_epochs_gate_lr_length_and_prior():
    sweep = load_sweep(REPO / "launch/sweeps/ablations.yaml")
    assert _rows(sweep) == {**{(v, False): set(TABLE4_ST) for v in ST_VARIANTS},
                            **{(v, True): set(TABLE4_MT) for v in ("attempt", "attempt-no_prior")}}
    (lib,) = sweep.libraries.values()
    assert lib.sources == SIX
    for cell in sweep.cells:
        argv = _argv(sweep, cell)
        if cell.multitask:
            tasks, epochs, gate_lr, length, prior = TABLE4_MT[cell.task_label]
            assert cell.tasks == tasks
        else:
            epochs, gate_lr, length, prior = TABLE4_ST[cell.task_label]
        assert (cell.train["epochs"], cell.train["gate_lr"], cell.train["max_length"]) == (epochs, gate_lr, length), cell.name
        if cell.variant == "attempt-no_prior":
            assert "--prior" not in argv and "--no-prior" in argv
        else:
            assert _flag(argv, "--prior").endswith(f"/run/prior/{prior}"), cell.name
        # Table 4's note: only the NewsQA ablation samples 10k; B.4: MRQA at 16 x 2
        assert cell.train.get("max_train_examples") == (10000 if cell.tasks == ("newsqa",) else None), cell.name
        assert (cell.train["batch_size"], cell.train.get("grad_accum", 1)) == ((16, 2) if length == 512 else (32, 1))
        # 6.1: single prompt keeps the source SPoT-t selects, read from the target's probe
        probed = cell.variant == "attempt-single_prompt"
        assert (_flag(argv, "--spot-probe") == f"{RUN}/library/{lib.key}/run/probes") == probed, cell.name
        assert (_flag(argv, "--single-source") == "auto") == probed
    assert set(lib.probes) >= set(TABLE4_ST)
    assert lib.priors == ("glue", "qa")


def test_one_library_for_tables_2_3_and_4_built_at_each_tasks_own_length():
    sweeps = [load_sweep(REPO / f"launch/sweeps/{name}.yaml") for name in ("glue_superglue", "mrqa_others", "ablations")]
    argvs = []
    for sweep in sweeps:
        (lib,) = sweep.libraries.values()
        assert lib.folder == "../paper-library"  # runs/<sweep>/../paper-library: one folder for all three
        argvs.append(library_argv(lib, RUN / "shared"))
    assert argvs[0] == argvs[1] == argvs[2]  # the same build, whichever sweep starts it
    argv = argvs[0]
    assert "--max-length" not in argv  # SQuAD, ReCoRD and MRQA probes at 512, MultiRC at 348 (4.3)
    assert _flag(argv, "--stages") == "sources,prior,spot_g,probes" and _flag(argv, "--priors") == "glue,qa"
    assert set(_flag(argv, "--targets").split(",")) == set(GLUE_SG) | set(MRQA_OTHERS)


def test_scaling_multirc_20_epochs():
    scaling = load_sweep(REPO / "launch/sweeps/scaling.yaml")
    assert {c.train["epochs"] for c in scaling.cells if c.tasks == ("multirc",)} == {20}
    assert all(lib.sources == SIX for lib in scaling.libraries.values())


def test_dry_run_lists_every_row_and_the_library_stages(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # rich folds long cell names in a narrow terminal
    # --node-mem: the cluster's GPU nodes, whatever SLURM answers here (the cells' auto plans are checked against it)
    assert cli.main(["sweep", str(REPO / "launch/sweeps/glue_superglue.yaml"), "--dry-run", "--node-mem", "512G",
                     "--output-dir", "/tmp/never-written"]) == 0
    out = capsys.readouterr().out
    assert "71 job(s) to submit" in out and "1 library stage(s)" in out
    assert "t5-base__spot-g__superglue__s42" in out and "sources,prior,spot_g,probes" in out


@pytest.mark.parametrize("epochs,message", [(0, "greater than 0, got 0"), (True, "a valid number, got True")])
def test_library_epochs_must_be_a_positive_number(epochs, message):
    from attempt_dist.errors import UserError
    from attempt_dist.sweep import parse_sweep

    raw = {"grid": {"models": ["t5-tiny"], "methods": ["attempt"], "tasks": ["rte"], "library": "p"},
           "libraries": {"p": {"sources": ["mnli"], "epochs": epochs}}, "executor": {"kind": "local"}}
    with pytest.raises(UserError, match=f"libraries.p.epochs: input should be {message}"):
        parse_sweep(raw)


def test_ablation_dry_run_shows_each_rows_prior_and_source(capsys, monkeypatch):
    from attempt_dist.sweep.resolved import library_inputs

    sweep = load_sweep(REPO / "launch/sweeps/ablations.yaml")
    (lib,) = sweep.libraries.values()
    said = {c.name: library_inputs(c, lib) for c in sweep.cells}
    assert said["t5-base__attempt-single_prompt__newsqa__s42"] == "prior=qa source=SPoT-t top-1 by probe"
    assert said["t5-base__attempt__others__s42"] == "prior=glue"
    assert said["t5-base__attempt-no_prior__mrqa__s42"] == "prior=none"
    monkeypatch.setenv("COLUMNS", "400")
    assert cli.main(["sweep", str(REPO / "launch/sweeps/ablations.yaml"), "--dry-run", "--node-mem", "512G",
                     "--output-dir", "/tmp/never"]) == 0
    out = capsys.readouterr().out
    assert "21 job(s) to submit" in out and "source=SPoT-t top-1 by probe" in out and "prior=qa" in out
