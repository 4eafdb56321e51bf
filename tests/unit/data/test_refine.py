"""Critique and refine (rlvr.data.refine): the conversation each round builds, which answers are rewritten with and
without the verifier's feedback, accuracy per round, the answers turned, principles from a YAML file, and the
preference pairs it yields (train.preferences=refine: from sampled answers, for DPO and for KTO)."""

from __future__ import annotations

import pytest

import rlvr.data.refine as refinement
from rlvr.data.preferences import unpair
from rlvr.data.refine import Refinement, accuracy_by_round, improved_pairs, refine, refined_pairs, turned
from rlvr.errors import ConfigError
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


def test_principles_from_a_yaml_file(tmp_path):
    path = tmp_path / "constitution.yaml"
    path.write_text("# ours\n- Check each step.\n- 'State one answer: the number.'\n")
    assert Refinement(principles=str(path)).principles == ["Check each step.", "State one answer: the number."]
    path.write_text("check: each step\n")
    with pytest.raises(ConfigError, match=r"^refine.principles=.*constitution.yaml: the file must hold a YAML list"):
        Refinement(principles=str(path))
    with pytest.raises(ConfigError, match=r"refine.principles=.*missing.yaml: cannot be read as a YAML list"):
        Refinement(principles=str(tmp_path / "missing.yaml"))


def test_refined_pairs_prefer_the_refined_correct_answer_over_the_first_wrong_sample(monkeypatch):
    """Two samples per prompt: "3 + 4 =" has a wrong one (refined right), "2 + 2 =" none (no pair), and a prompt
    whose refinement stays wrong gives no pair."""
    rows = [*ROWS, {"prompt": [{"role": "user", "content": "1 + 1 ="}], "answer": "2"}]
    samples = {"3 + 4 =": ["7", "9"], "2 + 2 =": ["4", "4"], "1 + 1 =": ["3", "5"]}
    revised = {"3 + 4 =": "So 7.", "1 + 1 =": "Still 3."}
    seen = []

    def sampler(model, tokenizer, **kw):
        def generate(prompts, max_new_tokens, k=1):
            seen.append(([p[-1]["content"] for p in prompts], k, kw))
            if len(prompts[0]) == 1:
                return [t for p in prompts for t in samples[p[0]["content"]][:k]]
            critique = prompts[0][-1]["content"].startswith("A checker")
            return ["Wrong sum." if critique else revised[p[0]["content"]] for p in prompts]
        return generate

    monkeypatch.setattr(refinement, "sampler", sampler)
    pairs = refined_pairs(None, None, rows, SCORER, Refinement(feedback="verifier"), k=2, max_new_tokens=16,
                          temperature=0.8, batch_size=4, seed=3)
    assert pairs == [{"prompt": rows[0]["prompt"], "chosen": [{"role": "assistant", "content": "So 7."}],
                      "rejected": [{"role": "assistant", "content": "9"}]}]
    assert [(len(asked), k) for asked, k, _ in seen] == [(3, 2), (2, 1), (2, 1)]  # the two prompts with a wrong one
    assert seen[0][2] == {"temperature": 0.8, "batch_size": 4, "seed": 3}
    assert [(r["completion"][0]["content"], r["label"]) for r in unpair(pairs)] == [("So 7.", True), ("9", False)]

    revised["3 + 4 ="] = "Still 9."
    with pytest.raises(ConfigError, match=r"train.preferences=refine: none of the 2 refined answers .* out of 3\) "
                                          r"ended correct"):
        refined_pairs(None, None, rows, SCORER, Refinement(feedback="verifier"), k=2, max_new_tokens=16,
                      temperature=0.8, batch_size=4, seed=3)


def test_settings_are_checked_like_any_setting():
    from rlvr.evaluation import Evaluator

    with pytest.raises(ConfigError, match=r"'eval.refine.rounds' must be >= 1"):
        Evaluator(refine={"rounds": 0})
    with pytest.raises(ConfigError, match=r"Invalid value 'oracle' for 'eval.refine.feedback'"):
        Evaluator(refine={"feedback": "oracle"})
    assert Evaluator(refine={"rounds": 2}).refine == Refinement(rounds=2)
