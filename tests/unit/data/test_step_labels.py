"""Math-Shepherd step labels from the verifier: each step but the last is labelled by the continuations rolled out
from its prefix (hard: any reaches the gold answer; soft: the share that does), the last by the solution's own
verdict. Sampling is scripted here, so every label is known; the cache survives an interruption mid-way and the
resumed labelling equals an uninterrupted one (real sampling from the tiny model, seeded per problem)."""

from __future__ import annotations

import json

import pytest

import rlvr.data.step_labels as step_labels
from rlvr.data import PromptTemplate
from rlvr.data.step_labels import Labelling, label_steps, read_cache
from rlvr.scoring import NumberVerifier, Scorer

ROW = {"prompt": [{"role": "user", "content": "2 + 3 + 4 ="}], "answer": "9"}
SOLUTIONS = [
    "2 + 3 = 5\n5 + 4 = 9\nThe answer is 9",  # right all the way
    "2 + 3 = 6\n6 + 4 = 10\nThe answer is 10",  # wrong from the first step
    "2 + 3 = 5\n5 + 4 = 8\nThe answer is 8",  # wrong from the second step
]
# What the policy writes after each prefix (4 rollouts): from a right prefix, most reach 9; after an error, few.
CONTINUATIONS = {
    "2 + 3 = 5\n": ["5 + 4 = 9\nso 9", "5 + 4 = 9\n9", "5 + 4 = 8\n8", "so 9"],
    "2 + 3 = 5\n5 + 4 = 9\n": ["The answer is 9", "9", "9", "It is 10"],
    "2 + 3 = 6\n": ["6 + 4 = 10\n10", "so 10", "then 10", "10"],
    "2 + 3 = 6\n6 + 4 = 10\n": ["10", "10", "The answer is 10", "11"],
    "2 + 3 = 5\n5 + 4 = 8\n": ["8", "8", "wait, 5 + 4 = 9\n9", "8"],
}


def scripted_sample(calls: list):
    """Stands in for the policy's sampling: the scripted solutions, and each prefix's scripted continuations."""

    def sample(model, tokenizer, prompts, *, k, seed, prefixes=None, **settings):
        calls.append((len(prompts), k, prefixes is not None))
        if prefixes is None:
            return [text for _ in prompts for text in SOLUTIONS[:k]]
        return [text for prefix in prefixes for text in CONTINUATIONS[prefix][:k]]

    return sample


def how(estimate: str = "hard", **kw) -> Labelling:
    settings = {"separator": "\n", "solutions": 3, "rollouts": 4, "estimate": estimate, "max_new_tokens": 16,
                "temperature": 1.0, "batch_size": 8, "seed": 0, **kw}
    return Labelling(**settings)


def scorer() -> Scorer:
    return Scorer(PromptTemplate().answer_format, NumberVerifier())


@pytest.mark.parametrize(("estimate", "labels"), [
    ("hard", [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]),
    ("soft", [[0.75, 0.75, 1.0], [0.0, 0.0, 0.0], [0.75, 0.25, 0.0]]),
])
def test_each_step_is_labelled_by_its_rollouts_and_the_last_by_the_verdict(monkeypatch, tmp_path, estimate, labels):
    calls: list = []
    monkeypatch.setattr(step_labels, "sample", scripted_sample(calls))
    solutions = label_steps(None, None, [ROW], scorer(), how(estimate), tmp_path)
    assert [s["completion"] for s in solutions] == SOLUTIONS
    assert [s["steps"] for s in solutions][0] == ["2 + 3 = 5\n", "5 + 4 = 9\n", "The answer is 9"]
    assert [s["correct"] for s in solutions] == [True, False, False]
    assert [s["labels"] for s in solutions] == labels
    assert all(s["prompt"] == ROW["prompt"] for s in solutions)
    # One batch of solutions, then one of 4 rollouts from each of the 2 x 3 inner step prefixes.
    assert calls == [(1, 3, False), (6, 4, True)]


def test_another_separator_makes_other_steps(monkeypatch, tmp_path):
    monkeypatch.setattr(step_labels, "sample", lambda *a, prefixes=None, k, **kw:
                        ["first; second; so 9"] * k if prefixes is None else ["9"] * k * len(prefixes))
    (solution,) = label_steps(None, None, [ROW], scorer(), how(solutions=1, separator="; "), tmp_path)
    assert solution["steps"] == ["first; ", "second; ", "so 9"] and solution["labels"] == [1.0, 1.0, 1.0]


def test_the_cache_is_named_by_the_settings_and_the_problems():
    rows = [ROW, {**ROW, "answer": "10"}]
    assert how().cache_file(rows) == how().cache_file([dict(r) for r in rows])
    assert len({how().cache_file(rows), how("soft").cache_file(rows), how(rollouts=2).cache_file(rows),
                how().cache_file(rows[:1])}) == 4


class Interrupted(Exception):
    pass


def test_a_labelling_interrupted_mid_way_resumes_at_the_next_problem_with_the_same_labels(tiny_model_dir, tmp_path):
    """Real sampling from the tiny model: the run is stopped while labelling its third problem (and a kill cut the
    cache's last line short); the rerun reads two problems from the cache, labels the rest and ends with exactly
    the labels an uninterrupted run makes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [{"prompt": [{"role": "user", "content": f"{i} + 1 ="}], "answer": str(i + 1)} for i in range(4)]
    settings = how(separator=" ", solutions=2, rollouts=2, max_new_tokens=12)  # the tiny model writes spaces often
    whole = label_steps(model, tok, rows, scorer(), settings, tmp_path / "whole")

    def stops_at_the_third_problem(completion, row):
        if row["answer"] == "3":
            raise Interrupted
        return scorer()(completion, row)

    with pytest.raises(Interrupted):
        label_steps(model, tok, rows, stops_at_the_third_problem, settings, tmp_path / "run")
    cache = tmp_path / "run" / settings.cache_file(rows)
    assert [r["problem"] for r in read_cache(cache)] == [0, 1]
    with cache.open("a") as f:
        f.write('{"problem": 2, "solutions": [{"compl')  # a kill in the middle of writing a line
    resumed_rows: list[str] = []

    def counting(completion, row):
        resumed_rows.append(row["answer"])
        return scorer()(completion, row)

    resumed = label_steps(model, tok, rows, counting, settings, tmp_path / "run")
    assert set(resumed_rows) == {"3", "4"}  # problems 0 and 1 came from the cache
    assert resumed == whole
    assert [json.loads(line)["problem"] for line in cache.read_text().splitlines()] == [0, 1, 2, 3]
    assert sum(len(s["steps"]) for s in whole) > len(whole)  # some solutions had inner steps to roll out from
