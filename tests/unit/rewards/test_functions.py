"""Every reward, table-driven, adversarial completions included: the answer repeated many times, several
answer tags, the answer only in the reasoning, huge numbers, unicode digits, empty replies."""

from __future__ import annotations

import pytest

from rlvr.rewards import (
    AnswerCheck,
    ApproximateFormat,
    Correctness,
    LengthShaping,
    NumberCheck,
    StrictFormat,
    SymbolicMatch,
)
from rlvr.scoring import NumberVerifier, Scorer, is_well_formatted
from rlvr.scoring.formats import AnswerFormat

XML = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False)
SEEDS = AnswerFormat(answer_start="<SOLUTION>", answer_end="</SOLUTION>",
                     reasoning_start="<start_working_out>", reasoning_end="<end_working_out>",
                     fallback_last_number=False)
ANSWER_ONLY = AnswerFormat(answer_tag="answer", fallback_last_number=False)
PLAIN = AnswerFormat()


def run(reward, completions, fmt, gold, verifier=None, question=None):
    """Call a reward the way the suite does: shared scores, the answer format and the gold column."""
    golds = gold if isinstance(gold, list) else [gold] * len(completions)
    scorer = Scorer(fmt, verifier or NumberVerifier())
    scores = [scorer(c, {"answer": g, "question": question}) for c, g in zip(completions, golds)]
    return reward(completions, scores=scores, answer_format=fmt, answer=golds, task=["t"] * len(completions))


def w(body: str, answer: str) -> str:
    """A seeds-format reply."""
    return f"<start_working_out>{body}<end_working_out><SOLUTION>{answer}</SOLUTION>"


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("<think>6*7</think><answer>42</answer>", XML, True),
        ("<think>6*7</think>\n<answer>42</answer>\n", XML, True),
        ("<think>6*7</think><answer>1</answer><answer>2</answer>", XML, False),  # several answer tags
        ("<think>a</think><think>b</think><answer>42</answer>", XML, False),  # repeated think blocks
        ("<think>a</think><answer>4</answer><think>b</think><answer>2</answer>", XML, False),
        ("<think></think><answer>42</answer>", XML, False),  # empty reasoning
        ("<think>6*7</think><answer> </answer>", XML, False),  # empty answer
        ("<answer>42</answer><think>6*7</think>", XML, False),  # answer before the reasoning
        ("<answer><think>6*7</think>42</answer>", XML, False),  # reasoning inside the answer
        ("<think>6*7 <answer>42</answer></think>", XML, False),  # answer inside the reasoning
        ("<think>6*7</think><answer>42</answer> and 43", XML, False),  # run-on after the answer
        ("<think>the answer is 42</think>", XML, False),  # the answer only in the reasoning
        ("<answer>42</answer>", XML, False),  # reasoning block missing
        ("<answer>42</answer>", ANSWER_ONLY, True),
        ("", XML, False),
        (w("6*7", "42"), SEEDS, True),
        (w("6*7", "42") + "<SOLUTION>43</SOLUTION>", SEEDS, False),
        ("so it is 7", PLAIN, True),
        ("no idea", PLAIN, False),
    ],
)
def test_exact_format(text, fmt, expected):
    assert is_well_formatted(text, fmt) is expected
    reward = StrictFormat(reward=3.0, penalty=-1.0)
    assert reward([text], scores=[None], answer_format=fmt) == [3.0 if expected else -1.0]


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        (w("6*7", "42"), SEEDS, 2.0),
        (w("6*7", "42") + "<SOLUTION>43</SOLUTION>", SEEDS, 0.0),  # repeated answer markers cost
        (w("6*7", "42") * 3, SEEDS, -2.0),  # the whole reply repeated
        ("<SOLUTION>42</SOLUTION>", SEEDS, 0.0),
        ("<start_working_out>the answer is 42<end_working_out>", SEEDS, 0.0),
        ("", SEEDS, -2.0),
        ("<answer>42</answer>", ANSWER_ONLY, 1.0),
        ("<answer>42</answer>" * 50, ANSWER_ONLY, -1.0),
        ("42", PLAIN, 0.0),  # no markers configured: nothing to count
    ],
)
def test_approximate_format(text, fmt, expected):
    assert ApproximateFormat()([text], scores=[None], answer_format=fmt) == [expected]


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        (w("6*12", "72"), "72", 3.0),  # exact
        (w("6*12", " 72 "), "72", 1.5),  # equal after stripping spaces
        (w("", "$72"), "72", 1.5),  # equal after normalisation
        (w("", "$80,000"), "80000", 1.5),
        (w("", "-5"), "-5", 3.0),
        (w("", "\u0667\u0662"), "72", 1.5),  # unicode digits: right, but not as written
        (w("", "70"), "72", 0.5),  # within 10%
        (w("", "60"), "72", 0.25),  # within 20%
        (w("", "7"), "72", -1.0),  # a substring of the gold is wrong
        (w("", "-72"), "72", -1.0),
        (w("", "9" * 200), "72", -1.0),  # huge
        (w("", "seventy-two"), "72", -1.0),  # unparseable
        (w("", ""), "72", -1.0),  # empty answer
        (w("", "72") * 5, "72", -1.0),  # the answer repeated: ambiguous, no answer
        ("<start_working_out>so 72<end_working_out>", "72", -1.0),  # only in the reasoning
        (w("", "72") + " or maybe 73", "72", 3.0),  # the marked answer, not the last number
        ("", "72", -1.0),
        (w("", "72"), "n/a", None),  # an unreadable gold never rewards: masked, counted as bad_gold
    ],
)
def test_answer_check_seeds_values(text, gold, expected):
    assert run(AnswerCheck(), [text], SEEDS, gold) == [expected]


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("<answer>14.3%</answer>", "0.14286", 3.0),  # correct, rounded, as a percentage
        ("<answer>0.14286</answer>", "0.14286", 3.0),
        ("<answer>14.28</answer>", "0.14286", 1.0),  # within 1%, wrongly rounded
        ("<answer>$(1,234)</answer>", "-1234", 3.0),  # accounting format
        ("<answer>-1240</answer>", "-1234", 1.0),
        ("<answer>14</answer>", "0.14286", -1.0),
        ("<answer>n/a</answer>", "0.14286", -1.0),
    ],
)
def test_answer_check_finqa_values(text, gold, expected):
    from rlvr.scoring import FinQAVerifier

    reward = AnswerCheck(exact=3.0, equivalent=3.0, close=[[0.01, 1.0]], wrong=-1.0, unparseable=-1.0, percent=True)
    question = "what percentage of revenue came from services?"  # FinQA reads percent/fraction only here
    assert run(reward, [text], ANSWER_ONLY, gold, verifier=FinQAVerifier(), question=question) == [expected]


def test_answer_check_text_answers_have_no_closeness():
    from rlvr.scoring import TextVerifier

    texts = ["<answer>Paris</answer>", "<answer>paris</answer>", "<answer>Pari</answer>"]
    assert run(AnswerCheck(), texts, ANSWER_ONLY, "Paris", verifier=TextVerifier()) == [3.0, 1.5, -1.0]


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        (w("", "72"), "72", 1.5),
        (w("", "72.0"), "72", 1.5),
        (w("", "$80,000"), "80000", 1.5),
        (w("", "-5"), "-5", 1.5),
        (w("", "5"), "-5", 0.0),
        (w("", "71"), "72", 0.0),
        (w("", "72 apples"), "72", 1.5),
        (w("", "3 + 69 = 72"), "72", 1.5),  # what follows the last "="
        (w("", "72 or 73"), "72", 0.0),  # a hedge: unparseable
        (w("", "72") * 2, "72", 0.0),
        ("", "72", 0.0),
        (w("", "\u0667\u0662"), "72", 1.5),  # unicode digits: the scorer's verdict
        (w("", "7.2e1"), "72", 1.5),
        (w("", "72"), "n/a", None),
    ],
)
def test_number_check(text, gold, expected):
    assert run(NumberCheck(), [text], SEEDS, gold) == [expected]


def test_number_check_follows_the_data_s_tolerance_and_skips_word_answers():
    """FinQA's verifier accepts 1% and rounding; NumberCheck pays what it accepts, and masks yes/no rows."""
    from rlvr.scoring import FinQAVerifier

    texts = [w("", "14.3"), w("", "14.2"), w("", "yes")]
    out = run(NumberCheck(), texts, SEEDS, ["14.29", "14.29", "yes"], verifier=FinQAVerifier(), question="how many?")
    assert out == [1.5, 0.0, None]


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("<answer>0.5</answer>", "\\frac{1}{2}", 1.0),
        ("<answer>\\frac{2}{4}</answer>", "0.5", 1.0),
        ("<answer>\\sqrt{2}</answer>", "\\sqrt{2}", 1.0),  # the raw block, not "2"
        ("<answer>2</answer>", "\\sqrt{2}", 0.0),
        ("<answer>$x^2+2x+1$</answer>", "(x+1)^2", 1.0),
        ("<answer>I don't know</answer>", "0.5", 0.0),  # unparseable
        ("<answer></answer>", "0.5", 0.0),
        ("<answer>0.5</answer>" * 3, "0.5", 0.0),
        ("<answer>0.5</answer>", "", None),  # gold unusable: masked
    ],
)
def test_symbolic_match(text, gold, expected):
    """Symbolic through the scorer's math verifier (data.answer_type=math), LaTeX passed on as written."""
    from rlvr.scoring import MathVerifier

    reward = SymbolicMatch(correct=1.0, wrong=0.0, unparseable=0.0)
    assert run(reward, [text], ANSWER_ONLY, gold, verifier=MathVerifier()) == [expected]


def test_symbolic_match_tells_unparseable_from_wrong():
    from rlvr.scoring import MathVerifier

    reward = SymbolicMatch(correct=2.0, wrong=-1.0, unparseable=-2.0)
    texts = ["<answer>1/2</answer>", "<answer>1/3</answer>", "<answer>???</answer>"]
    assert run(reward, texts, ANSWER_ONLY, "0.5", verifier=MathVerifier()) == [2.0, -1.0, -2.0]


def test_symbolic_match_is_the_scorer_s_verdict_whatever_the_verifier():
    """With numeric data the scorer compares numbers read whole (\\frac{1}{2} of plain numbers is 0.5, \\sqrt{2}
    is no number), and the reward agrees."""
    texts = ["<answer>\\frac{1}{2}</answer>", "<answer>0.5</answer>", "<answer>\u0667\u0662</answer>",
             "<answer>\\sqrt{2}</answer>"]
    assert run(SymbolicMatch(), texts, ANSWER_ONLY, ["0.5", "0.5", "72", "2"]) == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "text", "status", "expected"),
    [
        ({"target": 10}, "x" * 10, "correct", 1.0),
        ({"target": 10}, "x" * 15, "correct", 0.5),
        ({"target": 10}, "x" * 25, "correct", 0.0),
        ({"target": 10}, "x" * 3, "wrong", 0.0),  # a short wrong reply earns nothing
        ({"target": 10, "only_correct": False}, "x" * 3, "wrong", 1.0),
        ({"target": 2, "unit": "words", "reward": 0.2}, "a b c", "correct", 0.1),
        ({"target": 10}, "x", "bad_gold", None),
    ],
)
def test_length_shaping(kwargs, text, status, expected):
    from rlvr.interfaces import Score

    out = LengthShaping(**kwargs)([text], scores=[Score("1", status, 1.0 if status == "correct" else 0.0)])
    assert out == [pytest.approx(expected) if expected is not None else None]


def test_length_shaping_rejects_zero_target():
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="target"):
        LengthShaping(target=0)


@pytest.mark.parametrize(
    ("kwargs", "completions", "gold", "expected"),
    [
        ({}, ["<answer>7</answer>", "<answer>8</answer>", "none", "<answer>7</answer>"], ["7", "7", "7", "x"],
         [1.0, 0.0, 0.0, None]),
        ({"correct": 2.0, "wrong": -1.0, "unparseable": -2.0}, ["<answer>7</answer>", "<answer>8</answer>", ""],
         ["7", "7", "7"], [2.0, -1.0, -2.0]),
    ],
)
def test_correctness(kwargs, completions, gold, expected):
    assert run(Correctness(**kwargs), completions, ANSWER_ONLY, gold) == expected


def test_correctness_for_one_task_masks_the_others():
    from rlvr.interfaces import Score

    scores = [Score("1", "correct", 1.0), Score("2", "wrong", 0.0), Score("1", "correct", 1.0)]
    tasks = ["leg_counting", "leg_counting", "chain_sum"]
    out = Correctness(task="leg_counting")(["", "", ""], scores=scores, task=tasks)
    assert out == [1.0, 0.0, None]
