"""Plain-words diagnosis of training: the failure modes that make a run learn nothing while the loss looks
fine (GRPO and RLOO: cut-off completions, flat reward groups, unreadable answers; preference training: a reward
margin that does not grow; a learned reward that disagrees with the verifier; SFT logs none of these, so it is
quiet). Checks read the metrics TRL and the reward
suite log, averaged over the last few logging steps (one flat group in one step is normal; five in a row is not),
and say what to change. A run shorter than the
window is judged at its last step, honestly: its rates (truncation, parse failures) are measured over every
completion, but a couple of steps are too few to say that it cannot learn.

>>> d = Diagnoser(max_completion_length=40, window=1)
>>> d.update({"completions/clipped_ratio": 1.0})[0][:41]
'All completions (100%) hit max_completion'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from rlvr.interfaces import PREFERENCE_ACCURACY, PREFERENCE_MARGIN

KEYS = ("completions/clipped_ratio", "frac_reward_zero_std", "reward", "score/parse_rate", "score/bad_gold_rate",
        *PREFERENCE_MARGIN, *PREFERENCE_ACCURACY, "dynamic_sampling/unfilled_groups")
DISAGREEMENT = "/verifier_disagreement"  # a learned reward's, logged as <function>/verifier_disagreement
DISAGREE_ABOVE = 0.3  # the share of correct/incorrect pairs a learned reward orders against the verifier (0.5: chance)


class Diagnoser:
    """Args: max_completion_length: named in the truncation warning; window: logging steps averaged, and the
    steps of evidence needed before saying a run cannot learn."""

    def __init__(self, max_completion_length: int | None = None, window: int = 5):
        self.max_completion_length = max_completion_length
        self.recent: deque[Mapping[str, float]] = deque(maxlen=window)

    def update(self, metrics: Mapping[str, float], final: bool = False) -> list[str]:
        """Add one logging step; return the warnings that hold over the window (empty when all is well).

        ``final`` (the last step of the run) judges a run shorter than the window over all its steps, so a
        short trial run with the real settings still says what would go wrong.
        """
        self.recent.append({k: v for k, v in metrics.items() if k in KEYS or k.endswith(DISAGREEMENT)})
        if len(self.recent) < self.recent.maxlen and not final:
            return []
        mean = {k: sum(m[k] for m in self.recent) / len(self.recent) for k in self.recent[-1]
                if all(k in m for m in self.recent)}
        return diagnose(mean, max_completion_length=self.max_completion_length, steps=len(self.recent),
                        min_steps=self.recent.maxlen)


def diagnose(metrics: Mapping[str, float], *, max_completion_length: int | None = None, steps: int = 1,
             min_steps: int = 1) -> list[str]:
    """Warnings for metrics averaged over ``steps`` logging steps. Flat groups over fewer than ``min_steps``
    steps are reported as too little evidence, not as a run that cannot learn."""
    over = f" over the last {steps} steps" if steps > 1 else ""
    out = []
    clipped = metrics.get("completions/clipped_ratio")
    if clipped is not None and clipped >= 0.9:
        share = "All" if clipped >= 0.999 else f"{clipped:.0%} of"
        out.append(
            f"{share} completions ({clipped:.0%}{over}) hit max_completion_length={max_completion_length} and were "
            "cut off, so their answers are lost and rewards carry little signal. Raise train.max_completion_length "
            "or ask for a shorter answer in the prompt."
        )
    zero_std = metrics.get("frac_reward_zero_std")
    if zero_std is not None and zero_std >= 0.999:
        reward = metrics.get("reward")
        mean_reward = f" (mean reward {reward:.2f})" if reward is not None else ""
        if steps < min_steps:
            out.append(
                f"{steps} step{'s are' if steps > 1 else ' is'} too few to judge whether this run learns: so far "
                f"every group of completions got identical rewards{mean_reward}, which gives GRPO nothing to learn "
                f"from in these steps. Run more steps to tell: a longer run is warned when it lasts {min_steps} steps."
            )
        else:
            out.append(
                f"Every group of completions{over} got identical rewards{mean_reward}, so GRPO has no advantage to "
                "learn from and the loss is ~0 by construction. The task is too easy or too hard for this model: "
                "change its difficulty (data.params), or raise train.num_generations or train.temperature."
            )
    unfilled = metrics.get("dynamic_sampling/unfilled_groups")
    if unfilled:
        out.append(
            f"Dynamic sampling could not fill the batch{over}: {unfilled:.3g} group(s) per step still had identical "
            "rewards after train.max_resample_rounds extra generation rounds and were trained on anyway (they teach "
            "nothing). Raise train.max_resample_rounds, or give the model tasks it sometimes solves (data.params)."
        )
    parse = metrics.get("score/parse_rate")
    if parse is not None and parse < 0.1:
        out.append(
            f"Only {parse:.0%} of completions{over} contained an answer the extractor could read: the prompt "
            "(prompts.*) and the answer format disagree. This is a configuration problem, not a learning one."
        )
    margin = next((metrics[k] for k in PREFERENCE_MARGIN if k in metrics), None)
    accuracy = next((metrics[k] for k in PREFERENCE_ACCURACY if k in metrics), None)
    if margin is not None and margin <= 0 and (accuracy is None or accuracy <= 0.5) and steps >= min_steps:
        ranked = f", preference accuracy {accuracy:.0%}" if accuracy is not None else ""
        out.append(
            f"The chosen completions are not gaining on the rejected ones{over} (reward margin {margin:.3g}{ranked}): "
            "the preferences are not being learnt. Raise train.learning_rate, or check that the pairs differ in "
            "what the verifier rewards (train.preferences, data.columns)."
        )
    for key in sorted(k for k in metrics if k.endswith(DISAGREEMENT)):
        if metrics[key] >= DISAGREE_ABOVE:
            name = key.removesuffix(DISAGREEMENT)
            out.append(
                f"The learned reward '{name}' and the verifier disagree{over}: of the pairs of completions the "
                f"verifier tells apart (one correct, one not), '{name}' ranks {metrics[key]:.0%} the other way "
                "(50% is chance). The policy is paid for something the verifier does not credit: lower "
                f"reward.weights.{name}, or train the learned reward on more (or fresher) samples.")
    bad_gold = metrics.get("score/bad_gold_rate")
    if bad_gold:
        out.append(f"{bad_gold:.0%} of rows have a gold answer that cannot be parsed: check the dataset's answer "
                   "field.")
    return out
