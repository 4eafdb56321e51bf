"""Sampling metrics over k completions per question: the unbiased pass@k estimator and majority voting.

>>> pass_at_k(n=4, c=1, k=2)  # 1 - C(3,2)/C(4,2)
0.5
>>> majority_answer(["7", None, "8", "7"])
'7'
>>> repeats("so 2 + 2 = 4 and 2 + 2 = 4 and 2 + 2 = 4"), repeats("2 + 2 = 4")
(True, False)
>>> best([0.2, 0.9, 0.9])
1
"""

from __future__ import annotations

from collections import Counter
from math import comb
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` completions drawn from ``n`` (``c`` of them correct) is correct.

    The unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``; with ``n == k`` it is 1 when any
    completion is correct.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_answer(answers: list[str | None]) -> str | None:
    """The most frequent extracted answer (whitespace-stripped); ties go to the earliest; None if none parsed."""
    votes = Counter(a.strip() for a in answers if a is not None and a.strip())
    return votes.most_common(1)[0][0] if votes else None


def best(values: list[float]) -> int:
    """The index of the highest value (the first of equals): the completion a reranker picks in best-of-N."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def voted_correct(scores: list[Any]) -> bool:
    """Whether majority voting over these scored completions picks a correct answer (maj@k for one question)."""
    voted = majority_answer([s.extracted for s in scores])
    return any(s.correct for s in scores if s.extracted is not None and s.extracted.strip() == voted)


def repeats(text: str, n: int = 3, times: int = 3) -> bool:
    """Whether some sequence of ``n`` words occurs ``times`` times or more: the degenerate loop ("2 + 2 = 4 and
    2 + 2 = 4 and ...") a policy can fall into. The evaluator reports the share of completions that do."""
    words = text.split()
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return bool(grams) and max(grams.values()) >= times
