"""Metrics against values computed by hand (percentages)."""

import math

import pytest

from attempt_dist.tasks import Example, primary_score, score
from attempt_dist.tasks.metrics import normalize_answer, token_f1


def ex(task, target, answers=None, group=None, label=None, i=0):
    return Example(task, "src", target, answers or [target], group, i, label)


def test_accuracy_rte():
    golds = ["entailment", "not_entailment", "entailment", "entailment"]
    preds = ["entailment", "entailment", "entailment", "garbage"]
    assert score("rte", preds, [ex("rte", g) for g in golds]) == {"accuracy": 50.0}


def test_mrpc_accuracy_and_f1_of_the_positive_class():
    golds = ["equivalent", "equivalent", "not_equivalent", "not_equivalent", "equivalent"]
    preds = ["equivalent", "not_equivalent", "equivalent", "not_equivalent", "???"]
    # positives: TP=1 (row 0), FN=2 (row 1; row 4 unknown counts as wrong), FP=1 (row 2)
    # P = 1/2, R = 1/3, F1 = 2*(1/2)(1/3)/(5/6) = 0.4
    m = score("mrpc", preds, [ex("mrpc", g) for g in golds])
    assert m["accuracy"] == pytest.approx(40.0)
    assert m["f1"] == pytest.approx(40.0)
    assert primary_score("mrpc", m) == pytest.approx(40.0)


def test_mrpc_records_accuracy_f1_and_their_mean():
    """7 of the paper's 11 MRPC cells are no accuracy (paper/numbers.csv): MRPC keeps all three."""
    golds = ["equivalent", "equivalent", "not_equivalent", "not_equivalent"]
    preds = ["equivalent", "equivalent", "equivalent", "not_equivalent"]
    # accuracy 3/4; TP=2, FP=1, FN=0: P = 2/3, R = 1, F1 = 0.8
    assert score("mrpc", preds, [ex("mrpc", g) for g in golds]) == pytest.approx(
        {"accuracy": 75.0, "f1": 80.0, "acc_f1": 77.5})


def test_unknown_word_on_a_negative_gold_counts_as_a_false_positive():
    # gold negative, prediction garbage -> predicted positive -> FP; TP=1 -> P=1/2, R=1, F1=2/3
    m = score("qqp", ["duplicate", "xyz"], [ex("qqp", "duplicate"), ex("qqp", "not_duplicate")])
    assert m["f1"] == pytest.approx(200 / 3)
    assert m["accuracy"] == pytest.approx(50.0)


def test_cola_matthews():
    golds = ["acceptable", "acceptable", "acceptable", "unacceptable", "unacceptable"]
    preds = ["acceptable", "acceptable", "unacceptable", "unacceptable", "acceptable"]
    # TP=2 TN=1 FP=1 FN=1: MCC = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    m = score("cola", preds, [ex("cola", g) for g in golds])
    assert m["matthews"] == pytest.approx(100 / 6)


def test_cb_macro_f1_with_an_unknown_prediction():
    golds = ["entailment", "entailment", "contradiction", "neutral"]
    preds = ["entailment", "neutral", "contradiction", "maybe"]
    # entailment: P=1 R=1/2 F1=2/3; contradiction: F1=1; neutral: TP=0 (one FP) F1=0
    m = score("cb", preds, [ex("cb", g) for g in golds])
    assert m["f1_macro"] == pytest.approx(100 * (2 / 3 + 1 + 0) / 3)
    assert m["accuracy"] == pytest.approx(50.0)


def test_stsb_pearson_spearman_with_an_unparseable_prediction():
    golds = [1.0, 2.0, 3.0, 4.0]
    preds = ["1.0", "2.2", "oops", "3.8"]
    # unparseable -> -1.0; hand computation of Pearson on x=gold, y=[1, 2.2, -1, 3.8]
    y = [1.0, 2.2, -1.0, 3.8]
    mx, my = sum(golds) / 4, sum(y) / 4
    cov = sum((a - mx) * (b - my) for a, b in zip(golds, y))
    r = cov / math.sqrt(sum((a - mx) ** 2 for a in golds) * sum((b - my) ** 2 for b in y))
    # ranks of y: [2, 3, 1, 4] vs [1, 2, 3, 4]: d^2 = 1+1+4+0 = 6; rho = 1 - 6*6/(4*15) = 0.4
    m = score("stsb", preds, [ex("stsb", f"{g:.1f}", label=g) for g in golds])
    assert m["pearson"] == pytest.approx(100 * r)
    assert m["spearman"] == pytest.approx(40.0)


def test_stsb_constant_predictions_score_zero_not_nan():
    m = score("stsb", ["2.0", "2.0", "2.0"], [ex("stsb", "1.0", label=1.0), ex("stsb", "2.0", label=2.0),
                                               ex("stsb", "3.0", label=3.0)])
    assert m == {"pearson": 0.0, "spearman": 0.0}


def test_multirc_f1a_over_options_and_em_over_questions():
    # question q1: 3 options, all right; q2: 2 options, one wrong
    rows = [("q1", "True", "True"), ("q1", "False", "False"), ("q1", "True", "True"),
            ("q2", "True", "False"), ("q2", "False", "False")]
    examples = [ex("multirc", gold, group=g, i=i) for i, (g, gold, _) in enumerate(rows)]
    preds = [p for _, _, p in rows]
    # options: TP=2, FN=1, FP=0 -> F1 = 2*1*(2/3)/(5/3) = 0.8; EM = 1 of 2 questions
    m = score("multirc", preds, examples)
    assert m["f1a"] == pytest.approx(80.0)
    assert m["em"] == pytest.approx(50.0)
    assert primary_score("multirc", m) == pytest.approx(65.0)


def test_squad_normalisation_and_max_over_golds():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert token_f1("the big red barn", "red barn") == pytest.approx(0.8)  # P=2/3 R=1
    examples = [ex("squad", "Denver Broncos", ["Denver Broncos", "Broncos"]),
                ex("squad", "1066", ["1066"])]
    preds = ["broncos", "in 1066 AD"]
    # ex1: EM vs 'Broncos' = 1, F1 = 1; ex2: EM 0, F1: P=1/3 R=1 -> 0.5
    m = score("squad", preds, examples)
    assert m["em"] == pytest.approx(50.0)
    assert m["f1"] == pytest.approx(75.0)


def test_record_counts_each_query_once():
    # one query with three golds; a prediction matching any counts once (not 3x)
    examples = [ex("record", "Obama", ["Obama", "Barack Obama", "Obama"], group="0-0"),
                ex("record", "Paris", ["Paris"], group="0-1")]
    m = score("record", ["Barack Obama", "London"], examples)
    assert m == {"em": 50.0, "f1": 50.0}


def test_each_task_is_scored_with_its_own_metric():
    assert set(score("cola", ["acceptable"], [ex("cola", "acceptable")])) == {"matthews"}
    assert set(score("nq", ["x"], [ex("nq", "x")])) == {"em", "f1"}
    with pytest.raises(ValueError):
        score("rte", ["entailment"], [ex("cola", "acceptable")])
    with pytest.raises(ValueError):
        score("rte", [], [ex("rte", "entailment")])


def test_non_string_predictions_do_not_crash():
    assert score("rte", [None], [ex("rte", "entailment")]) == {"accuracy": 0.0}


# --- the paper's headline metric: what selection, tables and figures use ---------------------

@pytest.mark.parametrize("task, metrics, headline", [
    ("cb", {"accuracy": 80.0, "f1_macro": 60.0}, 80.0),        # Table 2's CB cells are accuracies (k/28)
    ("multirc", {"f1a": 70.0, "em": 30.0}, 70.0),              # F1a
    ("nq", {"em": 50.0, "f1": 62.0}, 62.0),                    # MRQA: "average F1"
    ("squad", {"em": 50.0, "f1": 62.0}, 62.0),
    ("mrpc", {"accuracy": 85.0, "f1": 89.0}, 85.0),
    ("stsb", {"pearson": 88.0, "spearman": 86.0}, 88.0),
    ("rte", {"accuracy": 71.0}, 71.0),
])
def test_headline_score_is_the_papers_one_metric(task, metrics, headline):
    from attempt_dist.tasks import headline_score

    assert headline_score(task, metrics) == headline


def test_every_task_has_a_headline_among_its_own_metrics():
    from attempt_dist.tasks import TASKS
    from attempt_dist.tasks.registry import HEADLINE_METRIC

    assert set(HEADLINE_METRIC) == set(TASKS)
    assert all(task.headline in task.metrics for task in TASKS.values())


def test_best_on_dev_compares_headline_metrics_not_their_mean():
    from attempt_dist.training.evaluate import selection_score

    # mean of headlines: (80 + 70) / 2; the mean of all metrics would give (70 + 50) / 2 = 60
    assert selection_score({"cb": {"accuracy": 80.0, "f1_macro": 60.0},
                            "multirc": {"f1a": 70.0, "em": 30.0}}) == 75.0
    with pytest.raises(ValueError, match="headline metric 'f1' missing"):
        selection_score({"nq": {"em": 50.0}})
