"""One scorer decides correctness everywhere: on adversarial completions (non-ASCII digits, scientific notation,
superscripts, boxed answers, GSM8K's ``####`` with talk after it, brackets), every reward that judges
correctness, in every shipped reward config, credits exactly the completions the evaluation's ``Scorer`` calls
correct; shaping (length) never pays one it does not."""

from __future__ import annotations

import pytest

from rlvr.rewards import AnswerCheck, Correctness, LengthShaping, NumberCheck, SymbolicMatch
from rlvr.scoring import MathVerifier, NumberVerifier, Scorer
from rlvr.scoring.formats import MARKER_STYLES, AnswerFormat
from tests.conftest import build_group, compose

FORMATS = {
    "last_number": AnswerFormat(),
    "gsm8k": AnswerFormat(answer_style="gsm8k"),
    "xml_tags": AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False),
    "working_out": AnswerFormat(**MARKER_STYLES["working_out"], fallback_last_number=False),
}
# (answer as the model writes it, gold)
ANSWERS = [
    ("72", "72"), ("\u0667\u0662", "72"), ("\uff17\uff12", "72"), ("\u0667\u0661", "72"), ("\u06f7\u06f2", "72"),
    ("7.2e1", "72"), ("7.2E+1", "72"), ("72.0", "72"), ("$72", "72"), ("72%", "72"), ("(72)", "72"),
    ("(72)", "-72"), ("10\u00b2", "100"), ("10\u00b2", "10"), ("2\u207b\u00b9", "0.5"), ("\\boxed{72}", "72"),
    ("$\\boxed{72}$", "72"), ("\\boxed{\u0667\u0662}", "72"), ("\\boxed{71}", "72"), ("1e2", "100"),
    ("seventy-two", "72"), ("7", "72"), ("", "72"),
]
REWARD_CONFIGS = ["verifier", "verifier_format_length", "math_reasoning", "finqa", "symbolic"]


def completions(fmt_name: str, answer: str) -> list[str]:
    """The answer in the format, plainly and with the traps each format has."""
    if fmt_name == "last_number":
        return [f"9 * 8 gives {answer}", f"Working: 9 * 8.\n{answer}"]
    if fmt_name == "gsm8k":
        return [f"9 * 8 = ?\n#### {answer}", f"#### {answer} and then more talk 13", f"The answer is {answer}. (9 x 8)"]
    if fmt_name == "xml_tags":
        return [f"<think>9 * 8 = 72</think><answer>{answer}</answer>",
                f"<think>so 72</think><answer>{answer}</answer> 72"]
    return [f"<start_working_out>9 * 8<end_working_out><SOLUTION>{answer}</SOLUTION>"]


def credited(fn, value: float | None) -> bool:
    """Whether a correctness reward's value is its reward for a correct answer."""
    if isinstance(fn, AnswerCheck):
        return value in (fn.exact, fn.equivalent)
    return value == fn.correct


@pytest.fixture(scope="module")
def suites():
    return {name: build_group(compose([f"reward={name}"]), "reward") for name in REWARD_CONFIGS}


@pytest.mark.parametrize("verifier", [NumberVerifier(), MathVerifier()], ids=["number", "math"])
@pytest.mark.parametrize("fmt_name", FORMATS)
def test_every_correctness_reward_agrees_with_the_evaluation_scorer(suites, fmt_name, verifier):
    fmt = FORMATS[fmt_name]
    scorer = Scorer(fmt, verifier)
    rows = [(text, gold) for answer, gold in ANSWERS for text in completions(fmt_name, answer)]
    texts, golds = [t for t, _ in rows], [g for _, g in rows]
    verdicts = [scorer(text, {"answer": gold}).correct for text, gold in rows]  # what evaluation counts
    assert any(verdicts) and not all(verdicts)
    judged = 0
    for config, suite in suites.items():
        functions = suite.trl_functions(scorer).functions
        for fn, trl_fn in zip(suite.functions.values(), functions.values()):
            values = trl_fn(prompts=["q"] * len(texts), completions=texts, answer=golds, task=["t"] * len(texts))
            for (text, gold), verdict, value in zip(rows, verdicts, values):
                where = f"{config}/{trl_fn.__name__} on {text!r} (gold {gold}): {value}, scorer correct={verdict}"
                if isinstance(fn, (Correctness, AnswerCheck, NumberCheck, SymbolicMatch)):
                    assert credited(fn, value) is verdict, where
                    judged += 1
                elif isinstance(fn, LengthShaping):
                    assert verdict or not value, where  # shaping only: nothing for what is not correct
    assert judged >= 5 * len(rows)


def test_the_disagreement_this_fixes():
    """SymbolicMatch used to ask math-verify about the raw block, which reads Arabic-Indic digits differently
    from the scorer: the scorer said correct and the reward said unparseable."""
    fmt = FORMATS["xml_tags"]
    scorer = Scorer(fmt, NumberVerifier())
    texts = ["<think>9 * 8</think><answer>\u0667\u0662</answer>", "<think>9 * 8</think><answer>\uff17\uff12</answer>"]
    scores = [scorer(t, {"answer": "72"}) for t in texts]
    assert [s.status for s in scores] == ["correct", "correct"]
    assert SymbolicMatch()(texts, scores=scores, answer_format=fmt, answer=["72"] * 2) == [1.0, 1.0]
    assert NumberCheck()(texts, scores=scores, answer_format=fmt, answer=["72"] * 2) == [1.5, 1.5]


def test_suites_cover_every_correctness_reward(suites):
    kinds = {type(fn) for suite in suites.values() for fn in suite.functions.values()}
    assert {Correctness, AnswerCheck, NumberCheck, SymbolicMatch, LengthShaping} <= kinds
