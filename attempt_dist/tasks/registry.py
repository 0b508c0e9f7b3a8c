"""The 25 tasks of the paper: 6 source tasks and 19 target tasks (Table 6's 17 plus CoLA and
COPA, named in Section 4.1), plus the synthetic toy family (tasks/toy.py): where each loads
from, how it is formatted, split and scored.

Splits (Section 4.3, following Mahabadi et al. 2021):
  halve    small data (<10k train examples; MultiRC counted in questions, as in the reference):
           the hub validation split is halved into dev and test by group, train stays train.
  holdout  large data: 1,000 training examples (groups) become dev, the hub validation (Yelp:
           test) split is the test set.
  given    the hub's own dev/test splits (MNLI: dev = validation_mismatched,
           test = validation_matched; SciTail and PAWS ship labelled validation and test).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError, shown

GLUE = "nyu-mll/glue"
SUPERGLUE = "aps/super_glue"
MRQA = "mrqa-workshop/mrqa"

from .splits import GIVEN_SCHEME as GIVEN, HALVE_SCHEME as HALVE, HOLDOUT_SCHEME as HOLDOUT

HALVE_SPLITS = {"train": "train", "eval": "validation"}
HOLDOUT_SPLITS = {"train": "train", "test": "validation"}


@dataclass(frozen=True)
class Task:
    """Everything the harness needs to know about one dataset.

    name          registry name (CLI, configs, result records)
    hub_id        Hugging Face dataset repo (parquet version; datasets >= 4 runs no scripts)
    hub_config    config name passed to load_dataset
    benchmark     GLUE / SuperGLUE / MRQA / Others, as the paper's tables group them
    group         multi-task training set (Appendix B.1, B.6): source_cls, source_qa, glue,
                  superglue, multirc (trained apart: long inputs), mrqa, others
    role          source | target
    kind          classification | regression | qa (target prompts init from the MNLI source
                  prompt for classification and regression, from SQuAD for qa; Appendix B.4)
    metrics       metric names (attempt_dist.tasks.metrics), each a percentage; the one the
                  paper reports is `headline` (HEADLINE_METRIC below)
    max_length    max input tokens (Appendix B.6: 256, MultiRC 348, MRQA QA 512)
    formatter     name in formats.FORMATTERS
    columns       hub columns the formatter needs; local files must carry them
    text_fields   fields shown, in order, after the task prefix (plain classification)
    label_words   target word for each class index
    label_aliases string labels in the hub (SciTail) -> class index
    split_scheme  halve | holdout | given (see module docstring)
    hub_splits    role -> hub split name: train, and eval (halve) or test (holdout) or dev+test
    group_by      idx keys whose values form the split group (None: each example alone)
    train_cap     at most this many training examples (Yelp: 100k, Section 4.3)
    mrqa_subset   MRQA `subset` value to keep (NQ, HotpotQA, SearchQA, NewsQA)
    generator     rows generated in code by this name (tasks/toy.py) instead of files or the hub
    """

    name: str
    hub_id: str
    hub_config: str
    benchmark: str
    group: str
    role: str
    kind: str
    metrics: tuple[str, ...]
    formatter: str
    columns: tuple[str, ...]
    max_length: int = 256
    text_fields: tuple[str, ...] = ()
    label_words: tuple[str, ...] = ()
    label_aliases: dict[str, int] = field(default_factory=dict)
    split_scheme: str = HALVE
    hub_splits: dict[str, str] = field(default_factory=lambda: dict(HALVE_SPLITS))
    group_by: tuple[str, ...] = ()
    train_cap: int | None = None
    mrqa_subset: str | None = None
    generator: str | None = None

    @property
    def headline(self) -> str:
        """The metric the paper's tables report for this task (HEADLINE_METRIC)."""
        return HEADLINE_METRIC[self.name]


def _glue(name, fields, words, group="glue", role="target", metrics=("accuracy",), **kw):
    return Task(name, GLUE, name, "GLUE", group, role, kw.pop("kind", "classification"), metrics,
                kw.pop("formatter", "classification"), (*fields, "label", "idx"),
                text_fields=fields, label_words=words, **kw)


def _superglue(name, fields, words, metrics=("accuracy",), formatter="classification",
               columns=None, config=None, **kw):
    cols = columns if columns is not None else (*fields, "label", "idx")
    return Task(name, SUPERGLUE, config or name, "SuperGLUE", kw.pop("group", "superglue"), "target",
                "classification", metrics, formatter, cols, text_fields=fields, label_words=words,
                **kw)


def _mrqa(name, subset):
    return Task(name, MRQA, "plain_text", "MRQA", "mrqa", "target", "qa", ("em", "f1"), "mrqa",
                ("subset", "context", "qid", "question", "answers"), max_length=512,
                split_scheme=HOLDOUT, hub_splits=dict(HOLDOUT_SPLITS), mrqa_subset=subset)


BOOL = ("False", "True")

_ALL = [
    # --- source tasks (Section 4.1; Appendix B.1 groups) ---
    _glue("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
          group="source_cls", role="source", split_scheme=GIVEN,
          hub_splits={"train": "train", "dev": "validation_mismatched", "test": "validation_matched"}),
    _glue("sst2", ("sentence",), ("negative", "positive"), group="source_cls", role="source",
          split_scheme=HOLDOUT, hub_splits=dict(HOLDOUT_SPLITS)),
    _glue("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), group="source_cls",
          role="source", metrics=("accuracy", "f1"), split_scheme=HOLDOUT,
          hub_splits=dict(HOLDOUT_SPLITS)),
    _glue("qnli", ("question", "sentence"), ("entailment", "not_entailment"), group="source_cls",
          role="source", split_scheme=HOLDOUT, hub_splits=dict(HOLDOUT_SPLITS)),
    Task("squad", "rajpurkar/squad", "plain_text", "MRQA", "source_qa", "source", "qa", ("em", "f1"),
         "squad", ("id", "title", "context", "question", "answers"), max_length=512,
         split_scheme=HOLDOUT, hub_splits=dict(HOLDOUT_SPLITS)),
    Task("record", SUPERGLUE, "record", "SuperGLUE", "source_qa", "source", "qa", ("em", "f1"),
         "record", ("passage", "query", "entities", "answers", "idx"), max_length=512,
         split_scheme=HOLDOUT, hub_splits=dict(HOLDOUT_SPLITS), group_by=("passage", "query")),
    # --- GLUE targets ---
    _glue("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment")),  # reversed order
    _glue("stsb", ("sentence1", "sentence2"), (), kind="regression", formatter="regression",
          metrics=("pearson", "spearman")),
    _glue("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
          metrics=("accuracy", "f1", "acc_f1")),  # acc_f1: 7 of the paper's 11 MRPC cells (paper/numbers.csv)
    _glue("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment")),
    _glue("cola", ("sentence",), ("unacceptable", "acceptable"), metrics=("matthews",)),
    # --- SuperGLUE targets ---
    _superglue("multirc", ("question", "answer", "paragraph"), BOOL, metrics=("f1a", "em"),
               formatter="multirc", group="multirc", max_length=348,
               group_by=("paragraph", "question")),
    _superglue("boolq", ("question", "passage"), BOOL),
    _superglue("wic", ("word", "sentence1", "sentence2"), BOOL),
    _superglue("wsc", ("text",), BOOL, formatter="wsc", config="wsc.fixed",
               columns=("text", "span1_index", "span2_index", "span1_text", "span2_text",
                        "label", "idx")),
    _superglue("cb", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral"),
               metrics=("accuracy", "f1_macro")),
    _superglue("copa", ("premise", "question", "choice1", "choice2"), ("choice1", "choice2"),
               formatter="copa"),
    # --- MRQA 2019 targets ---
    _mrqa("nq", "NaturalQuestionsShort"),
    _mrqa("hotpotqa", "HotpotQA"),
    _mrqa("searchqa", "SearchQA"),
    _mrqa("newsqa", "NewsQA"),
    # --- Others ---
    Task("winogrande", "allenai/winogrande", "winogrande_xl", "Others", "others", "target",
         "classification", ("accuracy",), "winogrande", ("sentence", "option1", "option2", "answer"),
         label_words=("option1", "option2"), split_scheme=HOLDOUT, hub_splits=dict(HOLDOUT_SPLITS)),
    Task("yelp", "fancyzhx/yelp_polarity", "plain_text", "Others", "others", "target",
         "classification", ("accuracy",), "yelp", ("text", "label"), text_fields=("text",),
         label_words=("negative", "positive"), split_scheme=HOLDOUT,
         hub_splits={"train": "train", "test": "test"}, train_cap=100_000),
    Task("scitail", "allenai/scitail", "tsv_format", "Others", "others", "target", "classification",
         ("accuracy",), "classification", ("premise", "hypothesis", "label"),
         text_fields=("premise", "hypothesis"), label_words=("entailment", "neutral"),
         label_aliases={"entails": 0, "neutral": 1}, split_scheme=GIVEN,
         hub_splits={"train": "train", "dev": "validation", "test": "test"}),
    Task("paws", "google-research-datasets/paws", "labeled_final", "Others", "others", "target",
         "classification", ("accuracy",), "classification", ("id", "sentence1", "sentence2", "label"),
         text_fields=("sentence1", "sentence2"), label_words=("not_paraphrase", "paraphrase"),
         split_scheme=GIVEN, hub_splits={"train": "train", "dev": "validation", "test": "test"}),
]

# The one number the paper reports for each task (its table cells, Figure 4's y axis): what
# best-on-dev selection compares and what tables and figures show. Every metric in `metrics` is
# still computed and stored in result.json. Tables 5-6 (appendix B.7) list the metrics of each
# task; where they list two, the choice and its evidence:
#   MRQA (and the QA sources SQuAD, ReCoRD): F1 -- "ATTEMPT-MT achieves 72.05 average F1" and
#     "2.55 and 1.88 F1 drop" on HotpotQA / SearchQA (section 5) over Table 3's MRQA columns.
#   MultiRC: F1a (F1 over all answer options) -- Table 2's 58.7-75.9 are F1a-sized, not EM.
#   CB: accuracy -- every Table 2 CB cell is a multiple of 100/28, the 28-example test half
#     (85.71 = 24/28, 78.57 = 22/28, 67.86 = 19/28, 46.42 = 13/28, 82.14 = 23/28).
#   MRPC: accuracy -- Table 2's FT, Adapter, BitFit and PT cells are multiples of 100/204, the
#     204-example test half (90.20 = 184/204, 85.29 = 174/204, 86.76 = 177/204, 68.14 = 139/204);
#     its other 7 cells (both ATTEMPT rows) are not, and `compare` scores those with acc_f1, the
#     mean of accuracy and F1 (paper/consistency.py, numbers.csv's metric column).
#   STS-B: Pearson (Table 6 lists "Pearson & Spearman"; the paper does not say which its cells show).
#   QQP: accuracy (Table 5 lists "accuracy & F1"; a source task, never in a results table).
# CoLA (Matthews) and COPA (accuracy) are named in section 4.1 but appear in no table.
HEADLINE_METRIC = {
    "mnli": "accuracy", "sst2": "accuracy", "qqp": "accuracy", "qnli": "accuracy", "squad": "f1",
    "record": "f1",
    "wnli": "accuracy", "stsb": "pearson", "mrpc": "accuracy", "rte": "accuracy", "cola": "matthews",
    "multirc": "f1a", "boolq": "accuracy", "wic": "accuracy", "wsc": "accuracy", "cb": "accuracy",
    "copa": "accuracy",
    "nq": "f1", "hotpotqa": "f1", "searchqa": "f1", "newsqa": "f1",
    "winogrande": "accuracy", "yelp": "accuracy", "scitail": "accuracy", "paws": "accuracy",
}

# The synthetic toy family (tasks/toy.py; imported here, below Task, which it builds from): in
# TASKS and `attempt-dist tasks`, but not among the paper's SOURCE_TASKS / TARGET_TASKS.
from . import toy  # noqa: E402

HEADLINE_METRIC.update(toy.HEADLINE)
TASKS: dict[str, Task] = {task.name: task for task in _ALL + toy.make_tasks(Task)}
SOURCE_TASKS = tuple(t.name for t in _ALL if t.role == "source")
TARGET_TASKS = tuple(t.name for t in _ALL if t.role == "target")
PAPER_TASKS = tuple(t.name for t in _ALL)


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {shown(name)}; known tasks: {', '.join(TASKS)}") from None
