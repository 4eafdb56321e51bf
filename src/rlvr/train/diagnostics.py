"""Plain-words diagnosis of a GRPO step: the failure modes that make a run learn nothing while the loss
looks fine. Each check reads the metrics TRL and the reward suite log, and says what to change.

>>> diagnose({"completions/clipped_ratio": 1.0}, max_completion_length=40)[0][:40]
'All completions (100%) hit max_completion'
"""

from __future__ import annotations

from collections.abc import Mapping


def diagnose(metrics: Mapping[str, float], *, max_completion_length: int | None = None) -> list[str]:
    """Warnings for one logging step; empty when nothing is wrong."""
    out = []
    clipped = metrics.get("completions/clipped_ratio")
    if clipped is not None and clipped >= 0.9:
        share = "All" if clipped >= 0.999 else f"{clipped:.0%} of"
        out.append(
            f"{share} completions ({clipped:.0%}) hit max_completion_length={max_completion_length} and were cut off, "
            "so their answers are lost and rewards carry little signal. Raise train.max_completion_length "
            "or ask for a shorter answer in the prompt."
        )
    zero_std = metrics.get("frac_reward_zero_std")
    if zero_std is not None and zero_std >= 0.999:
        reward = metrics.get("reward")
        out.append(
            "Every group of completions got identical rewards"
            + (f" (mean reward {reward:.2f})" if reward is not None else "")
            + ", so GRPO has no advantage to learn from and the loss is ~0 by construction. The task is too easy "
            "or too hard for this model: change its difficulty (data.params), or raise train.num_generations "
            "or train.temperature."
        )
    parse = metrics.get("score/parse_rate")
    if parse is not None and parse < 0.1:
        out.append(
            f"Only {parse:.0%} of completions contained an answer the extractor could read: the prompt "
            "(prompts.*) and the answer format disagree. This is a configuration problem, not a learning one."
        )
    bad_gold = metrics.get("score/bad_gold_rate")
    if bad_gold:
        out.append(f"{bad_gold:.0%} of rows have a gold answer that cannot be parsed: check the dataset's answer field.")
    return out
