"""Critique and refine (rlvr.data.refine): the conversation each round builds, which answers are rewritten with and
without the verifier's feedback, accuracy per round, the answers turned, and the preference pairs it yields."""

from __future__ import annotations

import pytest

from rlvr.data.refine import Refinement, accuracy_by_round, improved_pairs, refine, turned
from rlvr.scoring import AnswerFormat, Scorer
from rlvr.scoring.verifiers import NumberVerifier

SCORER = Scorer(AnswerFormat(), NumberVerifier())  # the last number of the reply
ROWS = [{"prompt": [{"role": "user", "content": f"{a} + {b} ="}], "answer": str(a + b)} for a, b in [(3, 4), (2, 2)]]


class Scripted:
    """A generate function that answers from a script (each question's refined answers in turn) and records every
    conversation it was given."""

    def __init__(self, critique: str, answers: dict[str, list[str]]):
        self.critique, self.answers, self.calls = critique, {q: iter(a) for q, a in answers.items()}, []

    def __call__(self, prompts, max_new_tokens):
        self.calls.append((prompts, max_new_tokens))
        if prompts[0][-1]["content"].startswith(("Review", "A checker")):
            return [self.critique for _ in prompts]
        return [next(self.answers[p[0]["content"]]) for p in prompts]


def test_each_round_critiques_the_latest_answer_then_asks_for_a_revision():
    generate = Scripted("I added wrong.", {"3 + 4 =": ["7"], "2 + 2 =": ["4"]})
    refine(ROWS, ["8", "4"], SCORER, Refinement(rounds=1), generate, answer_tokens=24)
    (critiques, critique_budget), (revisions, answer_budget) = generate.calls
    assert (critique_budget, answer_budget) == (96, 24)
    assert [m["role"] for m in revisions[0]] == ["user", "assistant", "user", "assistant", "user"]
    assert revisions[0][1]["content"] == "8" and revisions[0][3]["content"] == "I added wrong."
    assert critiques[0] == revisions[0][:3]
    assert "checker" not in critiques[0][-1]["content"]  # feedback=none: the model is not told


def test_without_feedback_every_answer_is_rewritten_and_a_right_one_can_turn_wrong():
    generate = Scripted("Looks wrong.", {"3 + 4 =": ["7", "7"], "2 + 2 =": ["5", "5"]})
    traces = refine(ROWS, ["8", "4"], SCORER, Refinement(rounds=2), generate, answer_tokens=8)
    assert accuracy_by_round(traces) == [0.5, 0.5, 0.5]
    assert turned(traces) == (0.5, 0.5)
    assert all(c == "Looks wrong." for t in traces for c in t.critiques)
    assert improved_pairs(traces) == [{"prompt": ROWS[0]["prompt"], "chosen": [{"role": "assistant", "content": "7"}],
                                       "rejected": [{"role": "assistant", "content": "8"}]}]


def test_verifier_feedback_rewrites_only_wrong_answers_and_says_they_are_wrong():
    generate = Scripted("The sum is off.", {"3 + 4 =": ["9", "7"]})  # wrong after round 1, right after round 2
    traces = refine(ROWS, ["8", "4"], SCORER, Refinement(rounds=3, feedback="verifier"), generate, answer_tokens=8)
    asked = [p for prompts, _ in generate.calls for p in prompts]
    assert all(p[0]["content"] == "3 + 4 =" for p in asked)  # the right answer "4" is never rewritten
    assert asked[0][-1]["content"].startswith("A checker found that your final answer is wrong.")
    assert accuracy_by_round(traces) == [0.5, 0.5, 1.0, 1.0]
    assert traces[1].critiques == [None, None, None] and traces[1].answers == ["4"] * 4
    assert traces[0].critiques[2] is None  # right after round 2: left alone in round 3
    assert traces[0].improved == "7" and turned(traces) == (0.5, 0.0)


def test_principles_make_a_constitutional_critique():
    messages = Refinement(principles=["Check each step.", "State one answer."]).critique_messages(
        ROWS[0]["prompt"], "8")
    assert messages[-1]["content"].endswith("principles:\n1. Check each step.\n2. State one answer.")


def test_settings_are_checked_like_any_setting():
    from rlvr.errors import ConfigError
    from rlvr.evaluation import Evaluator

    with pytest.raises(ConfigError, match=r"'eval.refine.rounds' must be >= 1"):
        Evaluator(refine={"rounds": 0})
    with pytest.raises(ConfigError, match=r"Invalid value 'oracle' for 'eval.refine.feedback'"):
        Evaluator(refine={"feedback": "oracle"})
    assert Evaluator(refine={"rounds": 2}).refine == Refinement(rounds=2)
