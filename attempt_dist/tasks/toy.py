"""The toy task family: synthetic text-to-text tasks whose transfer is known in advance.

Real T5 weights and the paper's datasets cannot be downloaded everywhere, and two CPU cores
cannot train on them anyway; this family is the small version of the same experiment. Every
row is generated in code, deterministically from the task name and split (no files, no
network), over words that are single tokens of the committed test tokenizer (so any T5 on it,
t5-toy included, reads them cheaply).

Sources (each teaches one skill; the t5-toy backbone is pretrained on them, attempt_dist/toy):
  toy_reverse   words: dog sun red        -> red sun dog        reverse a word list
  toy_sort      digits: 3 1 2             -> 1 2 3              sort digits ascending
  toy_category  name: paris               -> city               city or person

Targets, and the expected transfer (designed, not measured; README "What the CPU demo shows"
reports what was measured):
  toy_last      words: dog sun red        -> red                the reversed list's first word:
                                                                  needs toy_reverse
  toy_min       digits: 3 1 2             -> 1                  the sorted list's first digit:
                                                                  needs toy_sort
  toy_person    names: paris lena         -> lena               the one that is a person:
                                                                  needs toy_category
  toy_parity    digits: 3 1 2             -> even               parity of the last digit: none
                                                                  of the sources helps (unrelated)

So ATTEMPT's attention on toy_last should go to toy_reverse, on toy_min to toy_sort, on
toy_person to toy_category, and on toy_parity to no source in particular.

Splits: the generated rows come as train / validation / test (scheme "given"); the test rows
are drawn from their own random stream, so no split is a copy of another by construction
(short lists can still coincide by chance, as real data can).
"""

from __future__ import annotations

import hashlib
import random

from .splits import GIVEN_SCHEME

GROUP = "toy"
SIZES = {"train": 2000, "validation": 200, "test": 200}
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}

# Single tokens of the test tokenizer (attempt_dist/assets/t5-tiny-tokenizer.json); none is an
# article, which SQuAD-style answer normalisation would drop.
LIST_WORDS = ("dog", "sun", "red", "box", "bag", "lake", "river", "soup", "glass", "table",
              "piano", "window", "garden", "bridge", "forest", "park")
CITIES = ("paris", "oslo", "kyoto", "dublin", "lima", "hanoi", "perth", "quito", "lagos")
PEOPLE = ("priya", "lena", "marta", "hiro", "kofi", "omar", "nadia", "farid", "david", "carla",
          "jamal", "elena", "bruno", "ines", "grace")
DIGITS = tuple(str(d) for d in range(10))
CATEGORY_WORDS = ("city", "person")
PARITY_WORDS = ("even", "odd")

# name -> (role, kind, label words, what the model reads, its headline metric)
SPECS = {
    "toy_reverse": ("source", "qa", (), "words", "em"),
    "toy_sort": ("source", "qa", (), "digits", "em"),
    "toy_category": ("source", "classification", CATEGORY_WORDS, "name", "accuracy"),
    "toy_last": ("target", "qa", (), "words", "em"),
    "toy_min": ("target", "qa", (), "digits", "em"),
    "toy_person": ("target", "qa", (), "names", "em"),
    "toy_parity": ("target", "classification", PARITY_WORDS, "digits", "accuracy"),
}
SOURCES = tuple(name for name, spec in SPECS.items() if spec[0] == "source")
TARGETS = tuple(name for name, spec in SPECS.items() if spec[0] == "target")
# target -> the source whose skill it needs (None: unrelated to every source)
RELATED_SOURCE = {"toy_last": "toy_reverse", "toy_min": "toy_sort", "toy_person": "toy_category",
                  "toy_parity": None}


def _words(rng: random.Random) -> list[str]:
    return rng.sample(LIST_WORDS, rng.randint(3, 5))


def _digits(rng: random.Random) -> list[str]:
    return [rng.choice(DIGITS) for _ in range(rng.randint(3, 6))]


def _reverse(rng):
    words = _words(rng)
    return " ".join(words), " ".join(reversed(words))


def _sort(rng):
    digits = _digits(rng)
    return " ".join(digits), " ".join(sorted(digits))


def _category(rng):
    label = rng.randrange(2)
    return rng.choice((CITIES, PEOPLE)[label]), label


def _last(rng):
    words = _words(rng)
    return " ".join(words), words[-1]


def _min(rng):
    digits = _digits(rng)
    return " ".join(digits), min(digits)


def _person(rng):
    pair = [rng.choice(CITIES), rng.choice(PEOPLE)]
    rng.shuffle(pair)
    return " ".join(pair), next(w for w in pair if w in PEOPLE)


def _parity(rng):
    digits = _digits(rng)
    return " ".join(digits), int(digits[-1]) % 2


GENERATORS = {"toy_reverse": _reverse, "toy_sort": _sort, "toy_category": _category,
              "toy_last": _last, "toy_min": _min, "toy_person": _person, "toy_parity": _parity}


def _rng(task: str, split: str) -> random.Random:
    # Python's hash() of a str changes per process; a digest does not.
    digest = hashlib.sha256(f"{task}/{split}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def generate_rows(task: str, split: str, count: int | None = None) -> list[dict]:
    """Rows of one split in the toy schema: {"text", "answer"} (generation) or {"text",
    "label"} (classification), plus "idx"; the same on every call and machine."""
    if split not in SIZES:
        raise ValueError(f"toy tasks have splits {', '.join(SIZES)}, not {split!r}")
    rng = _rng(task, split)
    generate = GENERATORS[task]
    kind = SPECS[task][1]
    rows = []
    for idx in range(SIZES[split] if count is None else count):
        text, out = generate(rng)
        rows.append({"text": text, ("label" if kind == "classification" else "answer"): out, "idx": idx})
    return rows


def make_tasks(task_class) -> list:
    """The registry's Task objects for the family (task_class: registry.Task, passed in so this
    module stays importable on its own)."""
    tasks = []
    for name, (role, kind, words, field, headline) in SPECS.items():
        columns = ("text", "label" if kind == "classification" else "answer", "idx")
        metrics = ("accuracy",) if kind == "classification" else ("em", "f1")
        tasks.append(task_class(
            name, "", "", "Toy", GROUP, role, kind, metrics, "toy", columns, max_length=32,
            text_fields=(field,), label_words=words, split_scheme=GIVEN_SCHEME,
            hub_splits=dict(HUB_SPLITS), generator=name))
    return tasks


HEADLINE = {name: spec[4] for name, spec in SPECS.items()}
