"""Regenerate the fixture data: python examples/data/make_fixtures.py

Writes examples/data/<task>/<hub split>.jsonl for all 25 tasks, rows in exactly the hub schema
of docs/hub_schemas.md (field names, types, nesting, int labels, idx). Content is synthetic
but learnable: the label follows from the words (positive reviews hold positive adjectives,
entailed hypotheses restate the premise, answers are spans of the context). Seeded, so the
files are byte-identical on every run. Sizes: train 40-50 rows; validation 16-24 rows (halved
into dev/test); large-scheme tasks lose a fifth of train to dev.

After changing this file, rebuild the t5-tiny tokenizer too:
    python -m attempt_dist.model.tokenizer_build --rebuild
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

NAMES = ["Alice", "Bruno", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal",
         "Kofi", "Lena", "Marta", "Nadia", "Omar", "Priya"]
NOUNS = ["river", "castle", "garden", "museum", "train", "library", "market", "bridge", "forest",
         "harbor", "school", "bakery", "temple", "stadium"]
CITIES = ["Paris", "Lagos", "Lima", "Oslo", "Kyoto", "Cairo", "Quito", "Perth", "Dublin", "Hanoi"]
COUNTRIES = {"Paris": "France", "Lagos": "Nigeria", "Lima": "Peru", "Oslo": "Norway",
             "Kyoto": "Japan", "Cairo": "Egypt", "Quito": "Ecuador", "Perth": "Australia",
             "Dublin": "Ireland", "Hanoi": "Vietnam"}
GOOD = ["wonderful", "delightful", "brilliant", "charming", "excellent", "moving", "great"]
BAD = ["dull", "awful", "boring", "clumsy", "terrible", "tedious", "bad"]
VERBS = ["visited", "painted", "photographed", "described", "cleaned", "guarded"]


def write(task: str, split: str, rows: list[dict]) -> None:
    folder = HERE / task
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def balanced(rng: random.Random, n: int, k: int) -> list[int]:
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


# --- GLUE --------------------------------------------------------------------------------------

def sst2(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        words = GOOD if label else BAD
        rows.append({"sentence": f"the {rng.choice(NOUNS)} scenes are {rng.choice(words)} and "
                                 f"{rng.choice(words)} .", "label": label, "idx": idx})
    return rows


def cola(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        a, noun, verb = rng.choice(NAMES), rng.choice(NOUNS), rng.choice(VERBS)
        sentence = f"{a} {verb} the {noun}." if label else f"{verb} {a} the the {noun}."
        rows.append({"sentence": sentence, "label": label, "idx": idx})
    return rows


def _nli_pair(rng, label_kind: str):
    a, b, noun, city = rng.choice(NAMES), rng.choice(NAMES), rng.choice(NOUNS), rng.choice(CITIES)
    premise = f"{a} walked to the {noun} in {city} with {b} on Sunday."
    if label_kind == "entailment":
        hypothesis = f"{a} went to the {noun}."
    elif label_kind == "neutral":
        hypothesis = f"{a} bought a ticket for the {noun}."
    else:
        hypothesis = f"{a} stayed at home all Sunday."
    return premise, hypothesis


def mnli(rng, n):
    words = ["entailment", "neutral", "contradiction"]
    rows = []
    for idx, label in enumerate(balanced(rng, n, 3)):
        p, h = _nli_pair(rng, words[label])
        rows.append({"premise": p, "hypothesis": h, "label": label, "idx": idx})
    return rows


def glue_pair(rng, n, entail_label: int):
    """sentence1/sentence2 entailment rows; entail_label is the class index of 'entailment'."""
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        s1, s2 = _nli_pair(rng, "entailment" if label == entail_label else "contradiction")
        rows.append({"sentence1": s1, "sentence2": s2, "label": label, "idx": idx})
    return rows


def qnli(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        a, noun, city = rng.choice(NAMES), rng.choice(NOUNS), rng.choice(CITIES)
        question = f"Where is the {noun} that {a} built?"
        sentence = (f"{a} built the {noun} in {city}." if label == 0
                    else f"{a} enjoys the weather in {city}.")
        rows.append({"question": question, "sentence": sentence, "label": label, "idx": idx})
    return rows


def qqp(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        noun, city = rng.choice(NOUNS), rng.choice(CITIES)
        q1 = f"How do I visit the {noun} in {city}?"
        q2 = (f"What is the best way to visit the {noun} in {city}?" if label
              else f"Why is the {rng.choice(NOUNS)} in {rng.choice(CITIES)} closed?")
        rows.append({"question1": q1, "question2": q2, "label": label, "idx": idx})
    return rows


def paraphrase(rng, n, with_idx=True, id_field=False):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        a, noun, city = rng.choice(NAMES), rng.choice(NOUNS), rng.choice(CITIES)
        s1 = f"{a} opened a new {noun} in {city} last year."
        s2 = (f"Last year, {a} opened a new {noun} in {city}." if label
              else f"Last year, {city} opened a new {noun} near {a}.")
        row = {"sentence1": s1, "sentence2": s2, "label": label}
        if id_field:
            row = {"id": idx + 1, **row}
        if with_idx:
            row["idx"] = idx
        rows.append(row)
    return rows


def stsb(rng, n):
    rows = []
    for idx in range(n):
        a, noun, city = rng.choice(NAMES), rng.choice(NOUNS), rng.choice(CITIES)
        s1 = f"{a} is painting the old {noun} in {city}."
        overlap = rng.randint(0, 5)
        s2_parts = [f"{a} is painting", f"the old {noun}", f"in {city}"][: max(1, overlap // 2 + 1)]
        s2 = " ".join(s2_parts) + "." if overlap else f"A dog sleeps near the {rng.choice(NOUNS)}."
        label = round(min(5.0, max(0.0, overlap + rng.uniform(-0.4, 0.4))), 3)
        rows.append({"sentence1": s1, "sentence2": s2, "label": label, "idx": idx})
    return rows


def wnli(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):  # 0 not_entailment, 1 entailment
        a, b = rng.sample(NAMES, 2)
        s1 = f"{a} thanked {b} because {b} had helped with the {rng.choice(NOUNS)}."
        s2 = f"{b} had helped." if label else f"{a} had helped."
        rows.append({"sentence1": s1, "sentence2": s2, "label": label, "idx": idx})
    return rows


# --- SuperGLUE ---------------------------------------------------------------------------------

def boolq(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        city = rng.choice(CITIES)
        asked = COUNTRIES[city] if label else rng.choice([c for k, c in COUNTRIES.items() if k != city])
        passage = f"{city} is a large city in {COUNTRIES[city]}. It is known for its {rng.choice(NOUNS)}."
        rows.append({"question": f"is {city.lower()} in {asked.lower()}", "passage": passage,
                     "idx": idx, "label": label})
    return rows


def cb(rng, n):
    words = ["entailment", "contradiction", "neutral"]
    rows = []
    for idx, label in enumerate(balanced(rng, n, 3)):
        p, h = _nli_pair(rng, words[label])
        rows.append({"premise": p, "hypothesis": h, "idx": idx, "label": label})
    return rows


def copa(rng, n):
    pairs = [("The glass fell off the table.", "effect", "It broke.", "It sang."),
             ("The man felt cold.", "cause", "The window was open.", "The soup was hot."),
             ("The road was wet.", "cause", "It had rained.", "The sun was out."),
             ("She studied all night.", "effect", "She passed the exam.", "She forgot her name."),
             ("The crowd cheered.", "cause", "The team scored.", "The lights were green.")]
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        premise, question, right, wrong = rng.choice(pairs)
        c1, c2 = (right, wrong) if label == 0 else (wrong, right)
        rows.append({"premise": premise, "choice1": c1, "choice2": c2, "question": question,
                     "idx": idx, "label": label})
    return rows


def multirc(rng, paragraphs):
    rows = []
    for p in range(paragraphs):
        a, b = rng.sample(NAMES, 2)
        noun, city = rng.choice(NOUNS), rng.choice(CITIES)
        paragraph = (f"<b>Sent 1: </b>{a} lives in {city}.<br><b>Sent 2: </b>{a} works at the "
                     f"{noun} with {b}.<br><b>Sent 3: </b>{b} drives a red train.<br>")
        questions = [(f"Where does {a} live?", city, [rng.choice([c for c in CITIES if c != city])]),
                     (f"Who works with {a}?", b, [rng.choice([x for x in NAMES if x not in (a, b)])])]
        for q, (question, right, wrongs) in enumerate(questions):
            options = [(right, 1), (f"In {right}" if q == 0 else f"{right} does", 1)]
            options += [(w, 0) for w in wrongs] + [("Nobody knows", 0)]
            rng.shuffle(options)
            for a_i, (answer, label) in enumerate(options):
                rows.append({"paragraph": paragraph, "question": question, "answer": answer,
                             "idx": {"paragraph": p, "question": q, "answer": a_i}, "label": label})
    return rows


def record(rng, n_passages, start=0):
    rows = []
    for p in range(n_passages):
        a, b = rng.sample(NAMES, 2)
        city, noun = rng.choice(CITIES), rng.choice(NOUNS)
        passage = (f"{a} visited {city} on Monday to meet {b}.\n@highlight\n"
                   f"{a} praised the {noun} of {city}\n@highlight\n{b} will visit {a} next year")
        entities, spans = [], {"text": [], "start": [], "end": []}
        for ent in (a, city, b):  # every mention, hub style (arbitrary order, repeats)
            pos = passage.find(ent)
            while pos != -1:
                entities.append(ent)
                spans["text"].append(ent)
                spans["start"].append(pos)
                spans["end"].append(pos + len(ent))
                pos = passage.find(ent, pos + 1)
        rng.shuffle(entities)
        queries = [(f"@placeholder praised the {noun} of {city}", [a]),
                   (f"{a} went to @placeholder to meet {b}", [city, city])]
        for q, (query, answers) in enumerate(queries):
            rows.append({"passage": passage, "query": query, "entities": entities,
                         "entity_spans": spans, "answers": answers,
                         "idx": {"passage": start + p, "query": q}})
    return rows


def wic(rng, n):
    senses = {"bank": ("She sat on the bank of the river.", "He opened an account at the bank.",
                       "The bank of the lake was muddy."),
              "light": ("The box was light to carry.", "Turn on the light please.",
                        "His bag felt light today."),
              "play": ("The children play in the park.", "We saw a play at the theatre.",
                       "They play football after school.")}
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        word = rng.choice(list(senses))
        first, other, same = senses[word]
        second = same if label else other
        s1, e1 = first.lower().find(word), first.lower().find(word) + len(word)
        s2, e2 = second.lower().find(word), second.lower().find(word) + len(word)
        rows.append({"word": word, "sentence1": first, "sentence2": second, "idx": idx, "label": label,
                     "start1": s1, "start2": s2, "end1": e1, "end2": e2})
    return rows


def wsc(rng, n):
    rows = []
    for idx, label in enumerate(balanced(rng, n, 2)):
        big, small = rng.sample(["trophy", "suitcase", "statue", "piano", "box", "crate"], 2)
        words = f"The {big} did not fit into the {small} because it was too big .".split()
        pronoun = words.index("it")
        noun = big if label else small
        span1 = words.index(noun) - 1  # "the <noun>" (index of the article)
        rows.append({"text": " ".join(words), "span1_index": span1, "span2_index": pronoun,
                     "span1_text": " ".join(words[span1:span1 + 2]), "span2_text": "it",
                     "idx": idx, "label": label})
    return rows


# --- Others ------------------------------------------------------------------------------------

def squad(rng, n):
    rows = []
    for i in range(n):
        a, noun, city = rng.choice(NAMES), rng.choice(NOUNS), rng.choice(CITIES)
        year = rng.randint(1800, 2000)
        context = f"The {noun} in {city} was built by {a} in {year}. Many people visit it every year."
        if i % 2:
            question, answer = f"Who built the {noun} in {city}?", a
        else:
            question, answer = f"When was the {noun} in {city} built?", str(year)
        start = context.find(answer)
        rows.append({"id": f"{i:024x}", "title": city, "context": context, "question": question,
                     "answers": {"text": [answer, answer], "answer_start": [start, start]}})
    return rows


def _tokens(text: str) -> dict:
    tokens, offsets, pos = [], [], 0
    for tok in text.split():
        pos = text.find(tok, pos)
        tokens.append(tok)
        offsets.append(pos)
        pos += len(tok)
    return {"tokens": tokens, "offsets": offsets}


def mrqa(rng, n, subset, style):
    rows = []
    for i in range(n):
        a, noun, city = rng.choice(NAMES), rng.choice(NOUNS), rng.choice(CITIES)
        if style == "news":
            context = f"{city} (CNN) -- {a} reopened the {noun} on Tuesday after repairs, officials said."
        elif style == "search":
            context = f"[DOC] [TLE] {noun} of {city} [PAR] the {noun} was founded by {a} long ago"
        else:
            context = f"The {noun} of {city} was founded by {a}. It is a famous place in {city}."
        question = (f"who reopened the {noun} in {city}" if style == "news" else
                    f"who founded the {noun} of {city}")
        if style == "search":
            question = f"this person founded the {noun} of {city}"
        start = context.find(a)
        ctx_tokens = _tokens(context)
        tok_index = next(k for k, off in enumerate(ctx_tokens["offsets"]) if off >= start)
        answers = [a] if i % 3 else [a, a.lower()]
        rows.append({
            "subset": subset, "context": context, "context_tokens": ctx_tokens,
            "qid": f"{subset[:3].lower()}{i:05d}", "question": question,
            "question_tokens": _tokens(question),
            "detected_answers": {"text": [a], "char_spans": [{"start": [start], "end": [start + len(a) - 1]}],
                                 "token_spans": [{"start": [tok_index], "end": [tok_index]}]},
            "answers": answers,
        })
    return rows


def winogrande(rng, n):
    rows = []
    for label in balanced(rng, n, 2):
        a, b = rng.sample(NAMES, 2)
        rich = a if label == 0 else b
        poor = b if rich == a else a
        rows.append({"sentence": f"{rich} lent money to {poor} because _ was rich.",
                     "option1": a, "option2": b, "answer": str(label + 1)})
    return rows


def yelp(rng, n):
    rows = []
    for label in balanced(rng, n, 2):
        words = GOOD if label else BAD
        rows.append({"text": f"The food at this {rng.choice(NOUNS)} cafe was {rng.choice(words)}.\\n"
                             f"Service was {rng.choice(words)} too.", "label": label})
    return rows


def scitail(rng, n):
    rows = []
    for label in balanced(rng, n, 2):
        noun = rng.choice(["plants", "mammals", "rocks", "stars", "cells"])
        premise = f"Scientists observed that {noun} change slowly over long periods of time."
        hypothesis = (f"{noun.capitalize()} change over time." if label == 0
                      else f"{noun.capitalize()} are measured in grams.")
        rows.append({"premise": premise, "hypothesis": hypothesis,
                     "label": "entails" if label == 0 else "neutral"})
    return rows


def main() -> None:
    rng = random.Random(2022)
    # source tasks
    write("mnli", "train", mnli(rng, 45))
    write("mnli", "validation_matched", mnli(rng, 15))
    write("mnli", "validation_mismatched", mnli(rng, 15))
    for name, fn in (("sst2", sst2), ("qqp", qqp), ("qnli", qnli)):
        write(name, "train", fn(rng, 50))
        write(name, "validation", fn(rng, 20))
    write("squad", "train", squad(rng, 50))
    write("squad", "validation", squad(rng, 20))
    write("record", "train", record(rng, 25))
    write("record", "validation", record(rng, 10, start=100))
    # GLUE targets
    write("wnli", "train", wnli(rng, 40)); write("wnli", "validation", wnli(rng, 20))
    write("stsb", "train", stsb(rng, 40)); write("stsb", "validation", stsb(rng, 20))
    write("mrpc", "train", paraphrase(rng, 40)); write("mrpc", "validation", paraphrase(rng, 20))
    write("rte", "train", glue_pair(rng, 40, 0)); write("rte", "validation", glue_pair(rng, 20, 0))
    write("cola", "train", cola(rng, 40)); write("cola", "validation", cola(rng, 20))
    # SuperGLUE targets
    write("multirc", "train", multirc(rng, 5)); write("multirc", "validation", multirc(rng, 3))
    for name, fn in (("boolq", boolq), ("wic", wic), ("wsc", wsc), ("cb", cb), ("copa", copa)):
        write(name, "train", fn(rng, 40))
        write(name, "validation", fn(rng, 20))
    # MRQA targets (hub rows, one file per task, filtered by `subset` when loaded)
    for name, subset, style in (("nq", "NaturalQuestionsShort", "wiki"), ("hotpotqa", "HotpotQA", "wiki"),
                                ("searchqa", "SearchQA", "search"), ("newsqa", "NewsQA", "news")):
        write(name, "train", mrqa(rng, 50, subset, style))
        write(name, "validation", mrqa(rng, 20, subset, style))
    # Others
    write("winogrande", "train", winogrande(rng, 50)); write("winogrande", "validation", winogrande(rng, 20))
    write("yelp", "train", yelp(rng, 50)); write("yelp", "test", yelp(rng, 20))
    for split, n in (("train", 40), ("validation", 16), ("test", 16)):
        write("scitail", split, scitail(rng, n))
        write("paws", split, paraphrase(rng, n, with_idx=False, id_field=True))


if __name__ == "__main__":
    main()
