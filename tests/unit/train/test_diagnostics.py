"""Runs that cannot learn are named in plain words, from the metrics of the last few steps."""

import pytest

from rlvr.train.diagnostics import Diagnoser, diagnose


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"completions/clipped_ratio": 1.0}, "All completions (100%) hit max_completion_length=40"),
        ({"completions/clipped_ratio": 0.95}, "95% of completions"),
        ({"frac_reward_zero_std": 1.0, "reward": 0.0}, "no advantage to learn from"),
        ({"score/parse_rate": 0.02}, "the prompt (prompts.*) and the answer format disagree"),
        ({"score/bad_gold_rate": 0.5}, "gold answer that cannot be parsed"),
    ],
)
def test_each_failure_mode_is_explained(metrics, expected):
    warnings = diagnose(metrics, max_completion_length=40)
    assert len(warnings) == 1 and expected in warnings[0]


def test_healthy_step_has_no_warning():
    healthy = {"completions/clipped_ratio": 0.2, "frac_reward_zero_std": 0.3, "score/parse_rate": 0.95,
               "score/bad_gold_rate": 0.0, "reward": 0.4}
    assert diagnose(healthy) == []


def test_one_flat_group_is_not_alarming_but_a_window_of_them_is():
    d = Diagnoser(window=3)
    flat, ok = {"frac_reward_zero_std": 1.0, "reward": 0.0}, {"frac_reward_zero_std": 0.0, "reward": 0.5}
    assert d.update(flat) == [] and d.update(ok) == [] and d.update(flat) == []
    d2 = Diagnoser(window=3)
    out = [d2.update(flat) for _ in range(3)]
    assert out[:2] == [[], []] and "over the last 3 steps" in out[2][0]


def test_a_run_shorter_than_the_window_is_judged_at_its_last_step():
    d = Diagnoser(window=5, max_completion_length=64)
    cut = {"completions/clipped_ratio": 1.0, "frac_reward_zero_std": 1.0, "reward": -3.0}
    assert d.update(cut) == []
    final = d.update(cut, final=True)
    assert len(final) == 2 and "over the last 2 steps" in final[0] and "max_completion_length=64" in final[0]
