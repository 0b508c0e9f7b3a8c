"""Each task formats a real-schema hub row into the documented text-to-text pair, and none of the
reference implementation's formatting defects occur."""

import pytest

from attempt_dist.tasks import TASKS
from attempt_dist.tasks.formats import FORMATTERS, stsb_target


def fmt(name, row):
    task = TASKS[name]
    return FORMATTERS[task.formatter](task, row)


def one(name, row):
    examples = fmt(name, row)
    assert len(examples) == 1
    return examples[0]


# (task, hub row, expected source, expected target)
CASES = [
    ("mnli", {"premise": "A man eats.", "hypothesis": "Someone eats.", "label": 0, "idx": 3},
     "mnli premise: A man eats. hypothesis: Someone eats.", "entailment"),
    ("mnli", {"premise": "A man eats.", "hypothesis": "Nobody eats.", "label": 2, "idx": 4},
     "mnli premise: A man eats. hypothesis: Nobody eats.", "contradiction"),
    ("sst2", {"sentence": "a  gorgeous\tfilm ", "label": 1, "idx": 0},
     "sst2 sentence: a gorgeous film", "positive"),
    ("qqp", {"question1": "Why?", "question2": "How?", "label": 0, "idx": 1},
     "qqp question1: Why? question2: How?", "not_duplicate"),
    ("qnli", {"question": "Who?", "sentence": "Ann did.", "label": 0, "idx": 1},
     "qnli question: Who? sentence: Ann did.", "entailment"),
    # WNLI's label order is reversed relative to RTE: 1 means entailment.
    ("wnli", {"sentence1": "A.", "sentence2": "B.", "label": 1, "idx": 0},
     "wnli sentence1: A. sentence2: B.", "entailment"),
    ("wnli", {"sentence1": "A.", "sentence2": "B.", "label": 0, "idx": 0},
     "wnli sentence1: A. sentence2: B.", "not_entailment"),
    ("rte", {"sentence1": "A.", "sentence2": "B.", "label": 0, "idx": 0},
     "rte sentence1: A. sentence2: B.", "entailment"),
    ("mrpc", {"sentence1": "A.", "sentence2": "B.", "label": 1, "idx": 0},
     "mrpc sentence1: A. sentence2: B.", "equivalent"),
    ("cola", {"sentence": "Him saw she.", "label": 0, "idx": 0},
     "cola sentence: Him saw she.", "unacceptable"),
    ("stsb", {"sentence1": "A.", "sentence2": "B.", "label": 3.4000000953674316, "idx": 0},
     "stsb sentence1: A. sentence2: B.", "3.4"),
    ("boolq", {"question": "is it", "passage": "It is.", "idx": 0, "label": 1},
     "boolq question: is it passage: It is.", "True"),
    ("cb", {"premise": "P.", "hypothesis": "H.", "idx": 0, "label": 2},
     "cb premise: P. hypothesis: H.", "neutral"),
    ("cb", {"premise": "P.", "hypothesis": "H.", "idx": 0, "label": 1},
     "cb premise: P. hypothesis: H.", "contradiction"),
    ("wic", {"word": "bank", "sentence1": "S1.", "sentence2": "S2.", "start1": 0, "start2": 0,
             "end1": 4, "end2": 4, "idx": 0, "label": 0},
     "wic word: bank sentence1: S1. sentence2: S2.", "False"),
    ("copa", {"premise": "It rained.", "choice1": "Wet.", "choice2": "Dry.", "question": "effect",
              "idx": 0, "label": 0},
     "copa premise: It rained. question: effect choice1: Wet. choice2: Dry.", "choice1"),
    ("wsc", {"text": "Mark told Pete many lies about himself .", "span1_index": 0, "span2_index": 6,
             "span1_text": "Mark", "span2_text": "himself", "idx": 0, "label": 1},
     "wsc text: * Mark * told Pete many lies about # himself # .", "True"),
    ("wsc", {"text": "The city councilmen refused the demonstrators a permit because they feared violence .",
             "span1_index": 0, "span2_index": 9, "span1_text": "The city councilmen",
             "span2_text": "they", "idx": 1, "label": 1},
     "wsc text: * The city councilmen * refused the demonstrators a permit because # they # "
     "feared violence .", "True"),
    ("multirc", {"paragraph": "<b>Sent 1: </b>Ann runs.<br><b>Sent 2: </b>Bo walks.<br>",
                 "question": "Who runs?", "answer": "Ann",
                 "idx": {"paragraph": 7, "question": 2, "answer": 0}, "label": 1},
     "multirc question: Who runs? answer: Ann paragraph: Sent 1: Ann runs. Sent 2: Bo walks.", "True"),
    ("winogrande", {"sentence": "Ann helped Bo because _ was kind.", "option1": "Ann",
                    "option2": "Bo", "answer": "1"},
     "winogrande sentence: Ann helped Bo because _ was kind. option1: Ann option2: Bo", "option1"),
    ("yelp", {"text": "Great food.\\nWill return.", "label": 1},
     "yelp text: Great food. Will return.", "positive"),
    ("scitail", {"premise": "P.", "hypothesis": "H.", "label": "entails"},
     "scitail premise: P. hypothesis: H.", "entailment"),
    ("scitail", {"premise": "P.", "hypothesis": "H.", "label": "neutral"},
     "scitail premise: P. hypothesis: H.", "neutral"),
    ("paws", {"id": 5, "sentence1": "A.", "sentence2": "B.", "label": 1},
     "paws sentence1: A. sentence2: B.", "paraphrase"),
    # the toy family: generation (answer) and classification (label) rows
    ("toy_reverse", {"text": "dog  sun red", "answer": "red sun dog", "idx": 0},
     "toy_reverse words: dog sun red", "red sun dog"),
    ("toy_sort", {"text": "3 1 2", "answer": "1 2 3", "idx": 0}, "toy_sort digits: 3 1 2", "1 2 3"),
    ("toy_category", {"text": "paris", "label": 0, "idx": 0}, "toy_category name: paris", "city"),
    ("toy_last", {"text": "dog sun", "answer": "sun", "idx": 0}, "toy_last words: dog sun", "sun"),
    ("toy_min", {"text": "3 1 2", "answer": "1", "idx": 0}, "toy_min digits: 3 1 2", "1"),
    ("toy_person", {"text": "paris lena", "answer": "lena", "idx": 0}, "toy_person names: paris lena", "lena"),
    ("toy_parity", {"text": "3 1 2", "label": 0, "idx": 0}, "toy_parity digits: 3 1 2", "even"),
]


@pytest.mark.parametrize("name,row,source,target", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_formats_real_schema_rows(name, row, source, target):
    example = one(name, row)
    assert example.source == source
    assert example.target == target
    assert example.answers == [target]


def test_every_task_has_a_formatting_case():
    covered = {c[0] for c in CASES} | {"squad", "record", "nq", "hotpotqa", "searchqa", "newsqa"}
    assert covered == set(TASKS)


@pytest.mark.parametrize("score,text", [(3.4, "3.4"), (3.5, "3.6"), (3.29999995, "3.4"), (3.29, "3.2"),
                                        (3.3, "3.4"), (0.0, "0.0"), (5.0, "5.0"), (2.09, "2.0"),
                                        (4.81, "4.8"), (1.0999999, "1.2")])
def test_stsb_targets_sit_on_the_point_two_grid(score, text):
    # 3.3 (also as float32 3.2999999523) is halfway between 3.2 and 3.4: rounds half up.
    assert stsb_target(score) == text


def test_stsb_keeps_the_exact_gold_score_for_scoring():
    e = one("stsb", {"sentence1": "A.", "sentence2": "B.", "label": 2.75, "idx": 0})
    assert e.target == "2.8" and e.label == 2.75


def test_squad_target_is_the_first_answer_text_not_the_answers_dict():
    row = {"id": "5733be284776f41900661182", "title": "University_of_Notre_Dame",
           "context": "Architecturally, the school has a Catholic character.",
           "question": "What character does the school have?",
           "answers": {"text": ["a Catholic character", "Catholic"], "answer_start": [32, 34]}}
    e = one("squad", row)
    assert e.target == "a Catholic character"
    assert e.answers == ["a Catholic character", "Catholic"]
    assert "{" not in e.target and "answer_start" not in e.target
    assert e.source == ("squad question: What character does the school have? "
                        "context: Architecturally, the school has a Catholic character.")


def test_winogrande_shows_each_option_once():
    e = one("winogrande", {"sentence": "Sam lent money to Ravi because _ was rich.",
                           "option1": "Sam", "option2": "Ravi", "answer": "2"})
    assert e.target == "option2"
    assert e.source.count("option1:") == 1 and e.source.count("option2:") == 1
    assert e.source.count("Ravi") == 2  # once in the sentence, once as option2


def test_record_sorts_entities_and_keeps_every_answer_in_one_example():
    base = {"passage": "Ann met Bo in Rome.\n@highlight\nBo liked Rome",
            "query": "@placeholder met Bo", "answers": ["Ann", "Ann Lee"],
            "entity_spans": {"text": ["Ann", "Bo", "Rome"], "start": [0, 8, 14], "end": [3, 10, 18]},
            "idx": {"passage": 4, "query": 9}}
    a = fmt("record", dict(base, entities=["Rome", "Ann", "Bo", "Ann"]))
    b = fmt("record", dict(base, entities=["Bo", "Ann", "Rome"]))
    assert len(a) == 1  # one example per query, not one per answer
    assert a[0].source == b[0].source
    assert a[0].source == ("record query: @placeholder met Bo entities: Ann, Bo, Rome "
                           "passage: Ann met Bo in Rome. Bo liked Rome")
    assert a[0].target == "Ann" and a[0].answers == ["Ann", "Ann Lee"]
    assert a[0].group == "4-9"


def test_mrqa_row_keeps_all_answers():
    row = {"subset": "HotpotQA", "context": "Paris is in France.", "qid": "q1",
           "question": "Where is Paris?", "answers": ["France", "france"]}
    e = one("hotpotqa", row)
    assert e.source == "hotpotqa question: Where is Paris? context: Paris is in France."
    assert (e.target, e.answers) == ("France", ["France", "france"])


def test_multirc_group_is_the_question():
    e = one("multirc", {"paragraph": "P.", "question": "Q?", "answer": "A",
                        "idx": {"paragraph": 3, "question": 1, "answer": 4}, "label": 0})
    assert e.group == "3-1" and e.target == "False"


@pytest.mark.parametrize("name,row", [
    ("rte", {"sentence1": "A.", "sentence2": "B.", "label": -1, "idx": 0}),  # GLUE test row
    ("cb", {"premise": "P.", "hypothesis": "H.", "idx": 0, "label": 3}),
    ("scitail", {"premise": "P.", "hypothesis": "H.", "label": "contradiction"}),
    ("winogrande", {"sentence": "_", "option1": "a", "option2": "b", "answer": ""}),
    ("stsb", {"sentence1": "A.", "sentence2": "B.", "label": "high", "idx": 0}),
])
def test_unlabelled_or_bad_labels_are_rejected(name, row):
    with pytest.raises(ValueError):
        fmt(name, row)
