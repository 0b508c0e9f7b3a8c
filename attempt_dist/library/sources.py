"""The paper's source-task library, written down once: what the pipeline builds and what
sweeps and target runs read from it.

    from attempt_dist import source_library as lib
    lib.prior_sources("qa", ["mnli", "sst2", "qqp", "qnli", "squad", "record"])  # ['squad', 'record']
    lib.prior_for(["nq", "newsqa"])                                             # 'qa'

    library     one prompt per source task, prompt-tuned for 5 epochs each (B.3); ATTEMPT mixes
                all six for every target (section 4.1, Figure 5), SPoT-t ranks them
    priors      the attention gate pre-trained on a *subset* of the library (A.1, B.1): "glue"
                on MNLI, SST-2, QQP and QNLI for every target but MRQA, "qa" on SQuAD and
                ReCoRD for the MRQA targets
    spot_g      SPoT-g's one prompt, prompt-tuned on the mixture of the GLUE source tasks (B.5)
    probes      SPoT-t's target-task embeddings: prompt tuning on each target for 5 epochs, 20
                below 10k training examples (B.5), compared with the library by cosine

Layout of a pipeline folder: prompts/ (the library), prior/prior.pt (the "glue" prior, the
default), prior/qa.pt, spot_g/ and probes/ (prompt libraries of one prompt and one per target).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..tasks import SOURCE_TASKS, get_task
from ..tasks.splits import HALVE_SCHEME

SOURCE_EPOCHS = 5.0
"""B.3: every source prompt (and, trained the same way, each prior and SPoT-g) for 5 epochs."""

# B.1: each prior's source group, as the task registry groups the source tasks.
PRIOR_GROUPS = {"glue": "source_cls", "qa": "source_qa"}
DEFAULT_PRIOR = "glue"
SPOT_G_PROMPT = "spot_g"

PROMPTS_DIR, PRIOR_DIR, SPOT_G_DIR, PROBES_DIR = "prompts", "prior", "spot_g", "probes"


def prior_sources(name: str, library: list[str]) -> list[str]:
    """The library's source tasks prior `name` is pre-trained on (B.1), in library order.

    The default prior falls back to the whole library when it holds none of its group (a
    custom library): ATTEMPT always has a prior to start from.
    """
    if name not in PRIOR_GROUPS:
        raise UserError(f"unknown attention prior {name!r}; priors: {', '.join(PRIOR_GROUPS)}")
    chosen = [t for t in library if get_task(t).group == PRIOR_GROUPS[name]]
    if not chosen and name == DEFAULT_PRIOR:
        return list(library)
    return chosen


def buildable_priors(library: list[str]) -> list[str]:
    """The priors a library can pre-train: those with at least one of their source tasks."""
    return [name for name in PRIOR_GROUPS if prior_sources(name, library)]


def prior_for(tasks: list[str] | tuple[str, ...], available: list[str] | None = None) -> str:
    """B.1: the QA prior for QA targets (MRQA), the GLUE one for every other run (a run that
    mixes QA and other targets included); the default when the QA prior was not built."""
    wanted = "qa" if all(get_task(t).kind == "qa" for t in tasks) else DEFAULT_PRIOR
    if available is not None and wanted not in available:
        return DEFAULT_PRIOR
    return wanted


def prior_file(folder: str | Path, name: str) -> Path:
    """prior/prior.pt for the default prior (the path ATTEMPT runs always read), prior/<name>.pt else."""
    return Path(folder) / PRIOR_DIR / ("prior.pt" if name == DEFAULT_PRIOR else f"{name}.pt")


def spot_g_sources(library: list[str]) -> list[str]:
    """B.5: SPoT-g's prompt trains on the combination of the GLUE source tasks."""
    return prior_sources(DEFAULT_PRIOR, library)


def probe_epochs(task: str) -> float:
    """B.5: SPoT-t's probe runs 20 epochs on small targets (under 10k examples), 5 on others."""
    return 20.0 if get_task(task).split_scheme == HALVE_SCHEME else 5.0


def default_sources() -> list[str]:
    """Section 4.1: MNLI, SST-2, QQP, QNLI, SQuAD and ReCoRD."""
    return list(SOURCE_TASKS)
