"""Verifiers: how an extracted answer is judged against a row's gold answer (``row["answer"]``).

A verifier is ``(extracted_answer, row) -> float in [0, 1]``. It raises ``ValueError`` when the *gold* is
unusable (the row scores ``bad_gold``: never rewarded, counted) and :class:`~rlvr.scoring.numbers.UnparseableAnswer`
when the *prediction* cannot be read. Matching is always on the whole answer, never on a substring: ``7`` is
not ``72`` and an empty answer matches nothing.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

from rlvr.scoring.numbers import UnparseableAnswer, compare_numbers


class NumberVerifier:
    """Numeric equality after normalisation (``$``, commas, ``%``, ``(12)`` = -12, ``72.0`` = 72).

    Args:
        rel_tol: relative tolerance for equality.
        rounding: also require agreement at the coarser of the two precisions (see ``compare_numbers``).
        percent: accept the prediction read as a percentage (x100 or /100 of the gold).

    >>> v = NumberVerifier()
    >>> [v(a, {"answer": "80000"}) for a in ["80000", "80000.0", "8000", "80000.5"]]
    [1.0, 1.0, 0.0, 0.0]
    """

    def __init__(self, rel_tol: float = 1e-6, rounding: bool = False, percent: bool = False):
        self.rel_tol, self.rounding, self.percent = rel_tol, rounding, percent

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        equal, _ = compare_numbers(answer, row["answer"], rel_tol=self.rel_tol, rounding=self.rounding,
                                   percent=self.percent)
        return 1.0 if equal else 0.0


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed, without surrounding quotes or a trailing period."""
    return " ".join(str(text).casefold().split()).strip("\"'`").rstrip(".").strip()


class TextVerifier:
    """Exact match of the whole answer after :func:`normalise_text` (names, words, short strings).

    >>> v = TextVerifier()
    >>> [v(a, {"answer": "Paris"}) for a in ["paris", " Paris. ", "Par", "Paris, France"]]
    [1.0, 1.0, 0.0, 0.0]
    """

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        gold = normalise_text(row["answer"])
        if not gold:
            raise ValueError(f"gold answer {row['answer']!r} is empty")
        pred = normalise_text(answer)
        if not pred:
            raise UnparseableAnswer("empty answer")
        return 1.0 if pred == gold else 0.0


class MathVerifier:
    """Symbolic equivalence through ``math-verify`` (``1/2`` = ``0.5`` = ``\\frac{1}{2}``, ``(x+1)^2`` =
    ``x^2+2x+1``). LaTeX without ``$`` delimiters is accepted.

    >>> v = MathVerifier()
    >>> [v(a, {"answer": "\\\\frac{1}{2}"}) for a in ["0.5", "1/2", "2/3"]]
    [1.0, 1.0, 0.0]
    """

    def __init__(self, float_rounding: int = 6):
        self.float_rounding = float_rounding

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        from math_verify import verify

        gold = math_parse(str(row["answer"]))
        if not gold:
            raise ValueError(f"gold answer {row['answer']!r} cannot be parsed by math-verify")
        pred = math_parse(answer)
        if not pred:
            raise UnparseableAnswer(f"{answer!r} cannot be parsed by math-verify")
        return 1.0 if verify(gold, pred, float_rounding=self.float_rounding, timeout_seconds=_timeout()) else 0.0


def _timeout() -> int | None:
    """math-verify times out with signal.alarm, which only works in the main thread; elsewhere the reward
    suite's own timeout applies."""
    return 5 if threading.current_thread() is threading.main_thread() else None


def math_parse(text: str) -> list:
    """math-verify's parse, retried inside ``$...$`` for bare LaTeX; ``[]`` when nothing parses into an
    expression (math-verify's fallback of the raw string does not count: words are not maths).

    Text whose braces do not balance is no expression and gives ``[]`` without reaching math-verify, whose
    parser takes time quadratic in the number of unclosed braces (``\\boxed{`` repeated: seconds, or its
    timeout, and no timeout at all outside the main thread, where rewards run).
    """
    from math_verify import parse

    text = text.strip()
    if not text or not braces_balance(text):
        return []
    parsed = parse(text, parsing_timeout=_timeout())
    if not parsed and "$" not in text and re.search(r"[\\^{}]", text):
        parsed = parse(f"${text}$", parsing_timeout=_timeout())
    return parsed if any(not isinstance(p, str) for p in parsed) else []


def braces_balance(text: str) -> bool:
    r"""Every ``{`` closed by a later ``}``, escaped braces (``\{``, ``\}``: literal in LaTeX) aside.

    >>> [braces_balance(t) for t in ["\frac{1}{2}", "\{1, 2\}", "\boxed{\boxed{", "}{"]]
    [True, True, False, False]
    """
    depth, escaped = 0, False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


YES_NO = ("yes", "no")

class FinQAVerifier:
    """Yes/no answers by text; numbers within ``rel_tol`` and equal at the coarser precision, with accounting
    formats canonicalised. Only where the question asks for a percentage (or the gold or the prediction is
    written as one) may the prediction be read in percent of the gold (``14.3`` or ``14.3%`` for ``0.143``):
    everywhere else a factor of 100 is a wrong answer, so a gold of 5 does not accept 500 or 0.05.

    >>> v = FinQAVerifier()
    >>> share = {"question": "what percentage of revenue was services?", "answer": "0.14286"}
    >>> [v(a, share) for a in ["0.14286", "14.3", "14.29%", "14.2", "0.2"]]
    [1.0, 1.0, 1.0, 0.0, 0.0]
    >>> [v(a, {"question": "how many stores opened?", "answer": "5"}) for a in ["5", "500", "0.05"]]
    [1.0, 0.0, 0.0]
    """

    def __init__(self, rel_tol: float = 0.01):
        self.lenient = NumberVerifier(rel_tol=rel_tol, rounding=True, percent=True)
        self.strict = NumberVerifier(rel_tol=rel_tol, rounding=True)

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        if str(row["answer"]).casefold() in YES_NO:
            return TextVerifier()(answer, row)
        percentage = ("%" in str(row["answer"]) or "%" in answer
                      or re.search(r"%|percent", str(row.get("question", "")), re.I))
        return (self.lenient if percentage else self.strict)(answer, row)


class ReasoningGymVerifier:
    """reasoning-gym's ``score_answer`` for the row's source task (the entry travels as JSON in ``entry``).

    In a mixture each row is scored by its own task's verifier (``metadata.source_dataset``). An exception
    from a task's verifier is about the answer it was given (the gold is generated, hence valid), so it makes
    the answer ``unparseable``; an ``entry`` that is not valid JSON is a data problem (``bad_gold``).
    """

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        try:
            entry = json.loads(row["entry"])
        except (TypeError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"row has no reasoning-gym entry to score against: {e}") from None
        source = entry.get("metadata", {}).get("source_dataset") or row["task"]
        score = _score_fn(source)
        try:
            return float(score(answer, entry))
        except Exception as e:  # noqa: BLE001 - the task's own parser choked on the answer
            raise UnparseableAnswer(f"{source} could not score {answer!r}: {type(e).__name__}: {e}") from None

    def __reduce__(self) -> tuple:
        """Unpickled (in a reward worker process) with reasoning-gym imported then, when the worker starts: its
        import takes over a second, which would otherwise count against the worker's first timed call."""
        return _loaded_reasoning_gym_verifier, ()


def _loaded_reasoning_gym_verifier() -> ReasoningGymVerifier:
    import reasoning_gym  # noqa: F401

    return ReasoningGymVerifier()


@functools.lru_cache(maxsize=None)
def _score_fn(task: str) -> Any:
    """One scorer per task (building a reasoning-gym dataset to get at its scorer can be slow)."""
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(task)
