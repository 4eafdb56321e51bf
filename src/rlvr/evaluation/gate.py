"""The regression gate: after a training stage, is the model worse than before it?

A stage's held-out evaluation is compared with the one before it (the previous stage's, or the baseline's).
The gate refuses the stage when

- ``metric`` (accuracy by default; format_rate and parse_rate also read "higher is better") falls by more than
  ``max_drop``, or
- any metric named in ``max_increase`` rises by more than its limit: the ways a policy degenerates while its
  accuracy holds, ``repetition_rate`` (completions looping), ``mean_completion_tokens`` (rambling),
  ``truncation_rate`` (answers cut off), and the adversarial validator's ``ref_perplexity`` (text the reference
  model finds unlikely) and ``nli_contradiction_rate`` (completions contradicting their question), or
- any metric named in ``max_decrease`` falls by more than its limit: ``self_consistency`` (the k samples of a
  question stop agreeing), ``nli_entailment``, or another of the higher-is-better ones.

The validator's measures are in an evaluation only where ``eval`` measures them (:mod:`rlvr.evaluation.validator`,
``eval.k >= 2`` for self-consistency); the pipeline refuses a gate watching one that is not, before anything loads.

The pipeline then rolls the stage back and continues or stops (``on_regression``). Every comparison is recorded,
refused or not, so ``results.json`` says why a stage was kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HigherIsBetter = Literal["accuracy", "format_rate", "parse_rate", "self_consistency", "nli_entailment"]
LowerIsBetter = Literal["repetition_rate", "mean_completion_tokens", "truncation_rate", "ref_perplexity",
                        "nli_contradiction_rate"]


@dataclass(frozen=True)
class RegressionGate:
    """Args:
        metric: the held-out metric the gate watches (higher is better).
        max_drop: largest fall of ``metric`` a stage may cause (0.05: five points of accuracy); null: never refuse
            a stage on it (the comparison is still recorded).
        max_increase: ``{metric: largest rise}`` for metrics where lower is better, e.g.
            ``{repetition_rate: 0.1, mean_completion_tokens: 50, ref_perplexity: 2}``.
        max_decrease: ``{metric: largest fall}`` for further metrics where higher is better, e.g.
            ``{self_consistency: 0.1}``.
        on_regression: after rolling a refused stage back, ``continue`` with the next stage (from the model before
            the refused one) or ``stop`` the pipeline there (the kept model is evaluated, saved and reported).
    """

    metric: HigherIsBetter = "accuracy"
    max_drop: float | None = None
    max_increase: dict[LowerIsBetter, float] = field(default_factory=dict)
    max_decrease: dict[HigherIsBetter, float] = field(default_factory=dict)
    on_regression: Literal["continue", "stop"] = "continue"

    @property
    def enabled(self) -> bool:
        return self.max_drop is not None or bool(self.max_increase) or bool(self.max_decrease)

    @property
    def watched(self) -> set[str]:
        """Every metric the gate reads."""
        return {self.metric, *self.max_increase, *self.max_decrease}

    def judge(self, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
        """The verdict on a stage from two evaluation summaries (``EvalResult.summary()``): what changed, whether
        it passed, and why not. ``before`` None (no baseline was evaluated) passes, saying so."""
        verdict: dict[str, Any] = {"metric": self.metric, "after": value(after, self.metric), "passed": True}
        if before is None:
            return {**verdict, "before": None, "reason": "no evaluation before this stage to compare with"}
        change = value(after, self.metric) - value(before, self.metric)
        verdict.update(before=value(before, self.metric), change=round(change, 6), compared_with=before.get("name"))
        reasons = []
        if self.max_drop is not None and -change > self.max_drop + 1e-12:
            reasons.append(f"{self.metric} fell {value(before, self.metric):.3g} -> {value(after, self.metric):.3g} "
                           f"(by {-change:.3g}, more than pipeline.gate.max_drop={self.max_drop:g})")
        for key, sign, limits in (("max_increase", 1, self.max_increase), ("max_decrease", -1, self.max_decrease)):
            for name, limit in limits.items():
                old, new = value(before, name), value(after, name)
                verdict.setdefault("changes", {})[name] = round(new - old, 6)
                if sign * (new - old) > limit + 1e-12:
                    reasons.append(f"{name} {'rose' if sign > 0 else 'fell'} {old:.3g} -> {new:.3g} (by "
                                   f"{abs(new - old):.3g}, more than pipeline.gate.{key}.{name}={limit:g})")
        if reasons:
            verdict.update(passed=False, reason="; ".join(reasons))
        return verdict


def value(evaluation: dict[str, Any], name: str) -> float:
    """A metric of an evaluation summary: one of :class:`rlvr.interfaces.EvalResult`'s fields, or one of its
    ``extra`` measures (pass@k, self-consistency, the validator's)."""
    return evaluation[name] if name in evaluation else evaluation["extra"][name]
