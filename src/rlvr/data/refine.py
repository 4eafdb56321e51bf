"""Critique and refine: the model reviews its own answer and writes a better one, for ``rounds`` rounds.

Each round continues the conversation of the question with the latest answer::

    [system?, user: question]  assistant: answer  user: critique request (+ "a checker found it wrong")
                                                        (+ the principles, for a constitutional critique)
                               assistant: critique  user: revision request  assistant: refined answer

and the refined answer is scored with the run's :class:`~rlvr.scoring.Scorer`. The next round critiques that
answer (not the whole history, so the context stays one answer long). Three settings, as the self-correction
literature names them:

- ``feedback: none``: intrinsic self-correction (Self-Refine; Huang et al. 2024 found it rarely helps reasoning);
  every answer is critiqued and rewritten, so a right answer can turn wrong.
- ``feedback: verifier``: the model is told the verifier found its answer wrong, and a right answer is left
  alone (the oracle setting of Reflexion); only wrong answers are rewritten.
- ``principles``: a constitution (Bai et al. 2022): the critique judges the answer against each principle.

Used three ways: ``eval=refine`` (accuracy after each round, and how many answers turned right or wrong), the
expert iteration loop (refined answers that end correct join the fine-tuning data, STaR's rationalization with
the model's own critique in place of the hint), and the preference loops (``train.preferences=refine``: the
refined correct answer chosen over the original wrong one). The module generates nothing itself: it is given a
``generate(prompts, max_new_tokens)`` (greedy in evaluation, sampled for training data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from rlvr.data.preferences import reply, sample
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Score

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
Generate = Callable[[list[Messages], int], list[str]]  # chat prompts, token budget -> one completion each


@dataclass
class Refinement:
    """How the model critiques and refines its answers.

    Args:
        rounds: critique-and-refine rounds.
        feedback: ``none`` (the model is not told whether it was right; every answer is rewritten) or
            ``verifier`` (told that the verifier found its answer wrong; right answers are left alone).
        principles: a constitution: the critique judges the answer against each (empty: a plain self-critique);
            a list, or the path of a YAML file holding one (a constitution kept apart from the run's settings).
        critique_tokens: the token budget of each critique (the refined answer gets the answer budget).
        critique_request: what the model is asked for its critique.
        wrong_notice: what it is told with ``feedback: verifier``.
        revision_request: what it is asked for its refined answer.
    """

    rounds: AtLeastOne = 1
    feedback: Literal["none", "verifier"] = "none"
    principles: list[str] | str = field(default_factory=list)
    critique_tokens: AtLeastOne = 96
    critique_request: str = ("Review your answer above step by step and point out any mistake in it. Do not write "
                             "a new answer yet.")
    wrong_notice: str = "A checker found that your final answer is wrong."
    revision_request: str = ("Now answer the original question again, correcting the mistakes you found. End with "
                             "the final answer in the form the question asked for.")

    def __post_init__(self) -> None:
        if isinstance(self.principles, str):
            self.principles = read_principles(self.principles, "refine.principles")

    @classmethod
    def of(cls, value: Refinement | dict[str, Any] | None, key: str) -> Refinement | None:
        """The settings from a config (a plain mapping once built; ``key`` names it in errors) or as given."""
        if not isinstance(value, dict):
            return value
        if isinstance(value.get("principles"), str):
            value = {**value, "principles": read_principles(value["principles"], f"{key}.principles")}
        return cls(**value)

    def critique_messages(self, prompt: Messages, answer: str) -> Messages:
        """The conversation that asks for a critique of ``answer`` to ``prompt``.

        >>> r = Refinement(feedback="verifier", principles=["Check the arithmetic."])
        >>> print(r.critique_messages([{"role": "user", "content": "2+2?"}], "5")[-1]["content"])
        A checker found that your final answer is wrong. Review your answer above step by step and point out any \
mistake in it. Do not write a new answer yet.
        Judge it against these principles:
        1. Check the arithmetic.
        """
        request = f"{self.wrong_notice} {self.critique_request}" if self.feedback == "verifier" else \
            self.critique_request
        if self.principles:
            request += "\nJudge it against these principles:\n" + "\n".join(
                f"{i}. {p}" for i, p in enumerate(self.principles, start=1))
        return [*prompt, {"role": "assistant", "content": answer}, {"role": "user", "content": request}]

    def revision_messages(self, prompt: Messages, answer: str, critique: str) -> Messages:
        """The conversation that asks for a refined answer after ``critique``."""
        return [*self.critique_messages(prompt, answer), {"role": "assistant", "content": critique},
                {"role": "user", "content": self.revision_request}]


def read_principles(path: str, key: str) -> list[str]:
    """The principles a YAML file lists (``- Each step is computed correctly.``, one per item); errors name
    ``key``."""
    try:
        listed = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        why = " ".join(str(e).split())
        raise ConfigError(f"{key}={path}: cannot be read as a YAML list of principles ({why}).") from e
    if not isinstance(listed, list) or not listed or not all(isinstance(p, str) and p.strip() for p in listed):
        raise ConfigError(f"{key}={path}: the file must hold a YAML list of principles, one string each "
                          "(lines like '- Each arithmetic step is computed correctly.').")
    return [p.strip() for p in listed]


@dataclass
class Trace:
    """One question's critique and refinement: ``answers[0]`` is the original, ``answers[r]`` the answer after
    round r (the same answer again where it was left alone), ``scores`` alike; ``critiques[r - 1]`` the critique
    of round r (None where the answer was left alone)."""

    row: dict[str, Any]
    answers: list[str]
    scores: list[Score]
    critiques: list[str | None] = field(default_factory=list)

    @property
    def improved(self) -> str | None:
        """The first refined answer that is correct, when the original was not (None otherwise)."""
        if self.scores[0].correct:
            return None
        return next((a for a, s in zip(self.answers[1:], self.scores[1:]) if s.correct), None)


def refine(rows: list[dict[str, Any]], answers: list[str], scorer: Any, settings: Refinement, generate: Generate,
           answer_tokens: int) -> list[Trace]:
    """Critique and refine each row's answer for ``settings.rounds`` rounds; every round is two batched
    ``generate`` calls (critiques, then refined answers of ``answer_tokens`` tokens)."""
    traces = [Trace(row, [a], [scorer(a, row)]) for row, a in zip(rows, answers)]
    for _ in range(settings.rounds):
        active = [t for t in traces if settings.feedback == "none" or not t.scores[-1].correct]
        critiques = generate([settings.critique_messages(t.row["prompt"], t.answers[-1]) for t in active],
                             settings.critique_tokens) if active else []
        revised = generate([settings.revision_messages(t.row["prompt"], t.answers[-1], c)
                            for t, c in zip(active, critiques)], answer_tokens) if active else []
        done = {id(t): (c, a) for t, c, a in zip(active, critiques, revised)}
        for t in traces:
            critique, answer = done.get(id(t), (None, t.answers[-1]))
            t.critiques.append(critique)
            t.answers.append(answer)
            t.scores.append(scorer(answer, t.row) if critique is not None else t.scores[-1])
    return traces


def accuracy_by_round(traces: list[Trace]) -> list[float]:
    """The share of correct answers originally (index 0) and after each round."""
    return [sum(t.scores[r].correct for t in traces) / len(traces) for r in range(len(traces[0].scores))]


def turned(traces: list[Trace]) -> tuple[float, float]:
    """The shares of answers that went wrong -> right and right -> wrong from the original to the last round."""
    n = len(traces)
    return (sum(not t.scores[0].correct and t.scores[-1].correct for t in traces) / n,
            sum(t.scores[0].correct and not t.scores[-1].correct for t in traces) / n)


def improved_pairs(traces: list[Trace]) -> list[dict[str, Any]]:
    """``{prompt, chosen, rejected}``: the refined correct answer over the original wrong one, per trace that has
    both."""
    return [{"prompt": t.row["prompt"], "chosen": reply(t.improved), "rejected": reply(t.answers[0])}
            for t in traces if t.improved is not None]


def sampler(model: Any, tokenizer: Any, *, temperature: float, batch_size: int, seed: int) -> Callable[..., list[str]]:
    """``generate(prompts, max_new_tokens, k=1)``: ``k`` completions sampled per chat prompt from ``model``
    (:func:`rlvr.data.preferences.sample`, seeded, the training RNG left alone)."""
    def generate(prompts: list[Messages], max_new_tokens: int, k: int = 1) -> list[str]:
        return sample(model, tokenizer, prompts, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                      top_p=1.0, batch_size=batch_size, seed=seed)

    return generate


def refined_pairs(model: Any, tokenizer: Any, rows: list[dict[str, Any]], scorer: Any, settings: Refinement, *,
                  k: int, max_new_tokens: int, temperature: float, batch_size: int, seed: int) -> list[dict[str, Any]]:
    """Preference pairs from critique and refinement (``train.preferences=refine``): ``k`` samples per prompt; the
    first wrong one of each prompt is critiqued and refined (sampled too); a refined answer that ends correct is
    chosen over that original. A ConfigError says what to change when no refinement ended correct."""
    generate = sampler(model, tokenizer, temperature=temperature, batch_size=batch_size, seed=seed)
    texts = generate([r["prompt"] for r in rows], max_new_tokens, k)
    wrong = [(row, t) for i, row in enumerate(rows) for t in texts[i * k : (i + 1) * k] if not scorer(t, row).correct]
    first = list({id(row): (row, t) for row, t in reversed(wrong)}.values())[::-1]  # each prompt's first wrong one
    traces = refine([r for r, _ in first], [t for _, t in first], scorer, settings, generate, max_new_tokens)
    pairs = improved_pairs(traces)
    log.info("[rlvr] preference pairs by critique and refinement: %d prompts, %d with a wrong sample (of %d each); "
             "%d refined answers ended correct.", len(rows), len(first), k, len(pairs))
    if not pairs:
        raise ConfigError(
            f"train.preferences=refine: none of the {len(first)} refined answers (of prompts with a wrong sample, "
            f"out of {len(rows)}) ended correct, so there is no pair. Raise train.refine.rounds or "
            "train.sample_prompts, set train.refine.feedback=verifier, or use train.preferences=samples.")
    return pairs

