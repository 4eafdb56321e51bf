"""Scorer and verifiers: correct / wrong / unparseable / bad_gold, numeric tolerance, percent and rounding,
symbolic equivalence, and no substring or empty-answer matches."""

from __future__ import annotations

import math

import pytest

from rlvr.rewards.suite import score_stats
from rlvr.scoring import (
    MathVerifier,
    NumberVerifier,
    Scorer,
    TextVerifier,
    UnparseableAnswer,
)
from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import compare_numbers

TAGS = AnswerFormat(answer_tag="answer", fallback_last_number=False)


@pytest.mark.parametrize(
    ("pred", "gold", "kwargs", "equal", "err"),
    [
        ("72", "72", {}, True, 0.0),
        ("72.0", "72", {}, True, 0.0),
        ("$72", "72", {}, True, 0.0),
        ("80,000", "80000", {}, True, 0.0),
        ("-5", "-5", {}, True, 0.0),
        ("5", "-5", {}, False, 2.0),
        ("72.5", "72", {}, False, 0.5 / 72),
        ("1000001", "1000000", {}, False, 1e-6),  # integers: no tolerance
        ("72.00000001", "72", {}, True, 0.00000001 / 72),
        ("0", "0", {}, True, 0.0),
        ("0.001", "0", {}, False, math.inf),
        ("9" * 80, "9" * 80, {}, True, 0.0),
        ("9" * 79 + "8", "9" * 80, {}, False, 1e-80),
        # FinQA: percentages and rounded gold answers
        ("14.3", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, True, 0.00098),
        ("14.3%", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, True, 0.00098),
        ("0.143", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, True, 0.00098),
        ("0.142857", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, True, 0.000021),
        ("14.28", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, False, 0.00042),  # wrongly rounded
        ("14", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, False, 0.02),
        ("0.1", "0.14286", {"rel_tol": 0.01, "rounding": True, "percent": True}, False, 0.3),
        ("94", "0.94", {"rel_tol": 0.01, "rounding": True, "percent": True}, True, 0.0),
        ("(12)", "-12", {"rel_tol": 0.01, "rounding": True, "percent": True}, True, 0.0),
    ],
)
def test_compare_numbers(pred, gold, kwargs, equal, err):
    got_equal, got_err = compare_numbers(pred, gold, **kwargs)
    assert got_equal is equal
    assert got_err == pytest.approx(err, rel=0.01, abs=1e-12) or (math.isinf(err) and math.isinf(got_err))


@pytest.mark.parametrize(("pred", "gold", "error"), [
    ("72", "n/a", ValueError),  # the gold is the data's problem
    ("72", "", ValueError),
    ("seventy-two", "72", UnparseableAnswer),  # the prediction is the model's
    ("", "72", UnparseableAnswer),
    ("1e5x", "100000", UnparseableAnswer),  # (1e5 itself is 100000: scientific notation reads whole)
])
def test_compare_numbers_tells_bad_gold_from_unreadable_prediction(pred, gold, error):
    with pytest.raises(error):
        compare_numbers(pred, gold)
    assert not issubclass(UnparseableAnswer, ValueError)


@pytest.mark.parametrize(
    ("verifier", "answer", "gold", "expected"),
    [
        (NumberVerifier(), "72", "72", 1.0),
        (NumberVerifier(), "7", "72", 0.0),  # a substring of the gold is not the gold
        (NumberVerifier(), "172", "72", 0.0),  # nor is a superstring
        (NumberVerifier(), "72.0", "72", 1.0),
        (NumberVerifier(rel_tol=0.05), "70.5", "72", 1.0),
        (TextVerifier(), "Paris", "paris", 1.0),
        (TextVerifier(), "  PARIS. ", "Paris", 1.0),
        (TextVerifier(), "Par", "Paris", 0.0),
        (TextVerifier(), "Paris is the answer", "Paris", 0.0),
        (MathVerifier(), "0.5", "\\frac{1}{2}", 1.0),
        (MathVerifier(), "1/2", "0.5", 1.0),
        (MathVerifier(), "$(x+1)^2$", "x^2+2x+1", 1.0),
        (MathVerifier(), "2/3", "0.5", 0.0),
    ],
)
def test_verifiers(verifier, answer, gold, expected):
    assert verifier(answer, {"answer": gold}) == expected


@pytest.mark.parametrize(("verifier", "answer", "gold", "error"), [
    (TextVerifier(), "", "Paris", UnparseableAnswer),
    (TextVerifier(), "Paris", "  ", ValueError),
    (MathVerifier(), "???", "0.5", UnparseableAnswer),
    (MathVerifier(), "0.5", "", ValueError),
    (NumberVerifier(), "72", "seventy", ValueError),
])
def test_verifiers_raise_on_unusable_answers(verifier, answer, gold, error):
    with pytest.raises(error):
        verifier(answer, {"answer": gold})


class Broken(NumberVerifier):
    def __call__(self, answer, row):
        raise KeyError("verifier bug")


class Half(NumberVerifier):
    def __call__(self, answer, row):
        return 0.5


class NotANumber(NumberVerifier):
    def __call__(self, answer, row):
        return float("nan")


@pytest.mark.parametrize(
    ("verifier", "completion", "gold", "status", "value", "extracted"),
    [
        (NumberVerifier(), "<answer>$1,234</answer>", "1234", "correct", 1.0, "1234"),
        (NumberVerifier(), "<answer>7</answer>", "8", "wrong", 0.0, "7"),
        (NumberVerifier(), "<answer>seven</answer>", "7", "unparseable", 0.0, None),
        (NumberVerifier(), "no block, just 7", "7", "unparseable", 0.0, None),
        (NumberVerifier(), "<answer></answer>", "7", "unparseable", 0.0, None),  # empty never matches
        (NumberVerifier(), "<answer>7</answer>", "not a number", "bad_gold", 0.0, None),  # checked first, no reward
        (TextVerifier(), "<answer>7</answer>", "", "bad_gold", 0.0, None),
        (NumberVerifier(), "<answer>7 or 8</answer>", "7 or 8", "bad_gold", 0.0, None),  # a hedged gold is no gold
        (Broken(), "<answer>7</answer>", "7", "bad_gold", 0.0, "7"),  # a verifier bug is no reward, no crash
        (Half(), "<answer>7</answer>", "7", "wrong", 0.5, "7"),  # partial credit is not "correct"
        (NotANumber(), "<answer>7</answer>", "7", "wrong", 0.0, "7"),
    ],
)
def test_scorer_statuses(verifier, completion, gold, status, value, extracted):
    score = Scorer(TAGS, verifier)(completion, {"answer": gold})
    assert (score.status, score.value, score.extracted) == (status, value, extracted)


def test_score_batch_and_stats_count_each_status():
    scorer = Scorer(TAGS, NumberVerifier())
    completions = ["<answer>1</answer>", "<answer>2</answer>", "nothing", "<answer>4</answer>"]
    scores = scorer.score_batch(completions, {"answer": ["1", "3", "3", "n/a"], "task": ["t"] * 4, "other": "x"})
    assert [s.status for s in scores] == ["correct", "wrong", "unparseable", "bad_gold"]
    assert score_stats(scores) == {
        "score/accuracy": 0.25, "score/parse_rate": 0.75, "score/wrong_rate": 0.25,
        "score/unparseable_rate": 0.25, "score/bad_gold_rate": 0.25, "score/failed_rate": 0.0,
    }
    # a sample whose scoring failed (hung, crashed) is counted as failed, not as any status, and not as parsed
    failed = score_stats(scores, failed={0})
    assert (failed["score/failed_rate"], failed["score/accuracy"], failed["score/parse_rate"]) == (0.25, 0.0, 0.5)
