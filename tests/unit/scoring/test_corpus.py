"""The adversarial corpus (``corpus.py``): the evaluation scorer gives every asserted case the careful grader's
verdict in every shipped answer format it is placed in, and every correctness reward of every shipped reward
config credits exactly what the scorer credits. Debatable cases are listed with their reason, not asserted."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import lru_cache

import pytest

from rlvr.rewards import AnswerCheck, Correctness, LengthShaping, NumberCheck, SymbolicMatch
from rlvr.scoring import (
    ChoiceVerifier,
    FinQAVerifier,
    ListVerifier,
    MathVerifier,
    NumberVerifier,
    ReasoningGymVerifier,
    Scorer,
    TextVerifier,
)
from tests.conftest import build_group, compose
from tests.unit.scoring.corpus import ALL, CASES, Case, place

VERIFIERS = {"integer": NumberVerifier(integer=True), "number": NumberVerifier(), "expression": MathVerifier(),
             "string": TextVerifier(), "choice": ChoiceVerifier(), "list": ListVerifier(), "finqa": FinQAVerifier(),
             "task": ReasoningGymVerifier()}
REWARD_CONFIGS = ["verifier", "verifier_format", "verifier_format_length", "math_reasoning", "finqa", "symbolic"]
REPORT = "Net revenue grew 12% to $5,829 million (see the table).\n\nQuestion: "  # a % the question does not ask


@lru_cache(maxsize=None)
def answer_format(name: str):
    return build_group(compose([f"prompts={name}"]), "prompts").answer_format


@lru_cache(maxsize=None)
def task_row(task: str) -> dict:
    """A real reasoning-gym row of ``task`` whose gold its own scorer accepts (the first of a seeded draw)."""
    import reasoning_gym

    ds = reasoning_gym.create_dataset(task, size=8, seed=3)
    for entry in (ds[i] for i in range(len(ds))):
        row = {"question": entry["question"], "answer": str(entry["answer"]), "task": task,
               "entry": json.dumps(entry, default=str)}
        if entry["answer"] is None or ReasoningGymVerifier()(str(entry["answer"]), row) == 1.0:
            return row
    raise AssertionError(f"no usable {task} row")


def fill(case: Case) -> tuple[str, dict]:
    """The case's answer text and row (a task case's {gold}, {wrong}, {double} filled from its real row)."""
    if case.kind.startswith("task:"):
        row = task_row(case.kind.split(":", 1)[1])
        gold = row["answer"]
        wrong = str(int(gold) + 1) if gold.lstrip("-").isdigit() else gold + "x"
        double = "/".join(str(2 * int(p)) for p in re.findall(r"\d+", gold)[:2])  # 2a/2b: equal, not in lowest terms
        return case.text.format(gold=gold, wrong=wrong, double=double), row
    row = {"question": case.question, "answer": case.gold, "task": case.kind, "entry": "{}"}
    if case.kind == "finqa":
        row = dict(row, question=REPORT + case.question,
                   entry=json.dumps({"question": case.question, "gold_raw": case.gold}))
    return case.text, row


def placements(cases: list[Case]) -> list[tuple[Case, str, str, dict]]:
    out = []
    for case in cases:
        text, row = fill(case)
        for fmt in case.formats:
            out.append((case, fmt, text if case.whole else place(text, fmt), row))
    return out


ASSERTED = placements([c for c in CASES if c.credit is not None])


@pytest.mark.parametrize(("case", "fmt", "completion", "row"), ASSERTED,
                         ids=[f"{c.kind}-{fmt}-{c.reason[:40]}" for c, fmt, _, _ in ASSERTED])
def test_the_scorer_gives_the_graders_verdict(case, fmt, completion, row):
    score = Scorer(answer_format(fmt), VERIFIERS[case.kind.split(":")[0]])(completion, row)
    assert score.correct is case.credit, f"{case.reason}: {completion!r} gold {row['answer']!r} -> {score}"


def credited(fn, value) -> bool:
    if isinstance(fn, AnswerCheck):
        return value in (fn.exact, fn.equivalent)
    return value == fn.correct


@pytest.fixture(scope="module")
def suites():
    return {name: build_group(compose([f"reward={name}", "reward.isolation=thread"]), "reward")
            for name in REWARD_CONFIGS}


def test_every_correctness_reward_credits_exactly_what_the_scorer_credits(suites):
    groups: dict[tuple[str, str], list[tuple[str, dict]]] = defaultdict(list)
    for case, fmt, completion, row in ASSERTED:
        groups[(case.kind.split(":")[0], fmt)].append((completion, row))
    judged = 0
    for (kind, fmt), items in groups.items():
        scorer = Scorer(answer_format(fmt), VERIFIERS[kind])
        texts, rows = [t for t, _ in items], [r for _, r in items]
        scores = [scorer(t, r) for t, r in items]
        columns = {k: [r[k] for r in rows] for k in ("question", "answer", "task", "entry")}
        for config, suite in suites.items():
            for name, fn in suite.functions.items():
                values = suite.call(name, texts, scores, scorer, columns)
                for text, score, value in zip(texts, scores, values):
                    where = f"{config}/{name} on {text!r}: {value}, scorer {score.status}"
                    if isinstance(fn, (Correctness, AnswerCheck, NumberCheck, SymbolicMatch)) and value is not None:
                        assert credited(fn, value) is score.correct, where
                        judged += 1
                    elif isinstance(fn, LengthShaping):
                        assert score.correct or not value, where
    assert judged >= 5 * len(ASSERTED)  # every placement judged by several rewards (NumberCheck masks text golds)


def test_debatable_cases_say_why_and_score_without_error():
    debatable = placements([c for c in CASES if c.credit is None])
    assert debatable and all(len(c.reason) > 10 for c, *_ in debatable)
    for case, fmt, completion, row in debatable:
        score = Scorer(answer_format(fmt), VERIFIERS[case.kind.split(":")[0]])(completion, row)
        assert score.status in ("correct", "wrong", "unparseable"), (case, score)


def test_the_corpus_covers_every_answer_type_and_format():
    assert len(CASES) >= 150
    kinds = {c.kind.split(":")[0] for c in CASES}
    assert kinds == set(VERIFIERS)
    assert {fmt for c in CASES for fmt in c.formats} == set(ALL)
    for kind in kinds:  # each type has credited and refused cases
        verdicts = {c.credit for c in CASES if c.kind.split(":")[0] == kind}
        assert {True, False} <= verdicts, kind
