"""Runs that cannot learn are named in plain words, from the metrics of the last few steps; a run too short to
judge is told so instead of being told it cannot learn."""

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
        ({"dynamic_sampling/unfilled_groups": 2.0}, "Dynamic sampling could not fill the batch: 2 group(s)"),
    ],
)
def test_each_failure_mode_is_explained(metrics, expected):
    warnings = diagnose(metrics, max_completion_length=40)
    assert len(warnings) == 1 and expected in warnings[0]


def test_healthy_step_has_no_warning():
    healthy = {"completions/clipped_ratio": 0.2, "frac_reward_zero_std": 0.3, "score/parse_rate": 0.95,
               "score/bad_gold_rate": 0.0, "reward": 0.4, "dynamic_sampling/unfilled_groups": 0.0}
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
    assert final[1].startswith("2 steps are too few to judge whether this run learns")


SMOKE_STEP = {"frac_reward_zero_std": 1.0, "reward": 0.0, "completions/clipped_ratio": 0.5, "score/parse_rate": 0.5,
              "score/bad_gold_rate": 0.0}  # what experiment=smoke logs: one group of 4 completions per step


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_flat_groups_in_a_short_run_are_too_little_evidence_to_say_it_cannot_learn(steps):
    d = Diagnoser(window=5, max_completion_length=16)
    for _ in range(steps - 1):
        assert d.update(SMOKE_STEP) == []
    (warning,) = d.update(SMOKE_STEP, final=True)
    plural = "1 step is" if steps == 1 else f"{steps} steps are"
    assert warning.startswith(f"{plural} too few to judge") and "(mean reward 0.00)" in warning
    assert "warned when it lasts 5 steps" in warning
    assert "no advantage" not in warning and "~0 by construction" not in warning and "too hard" not in warning


def test_flat_groups_over_the_whole_window_still_say_the_run_cannot_learn():
    d = Diagnoser(window=5)
    out = [d.update(SMOKE_STEP) for _ in range(5)]
    assert out[:4] == [[]] * 4 and len(out[4]) == 1
    assert out[4][0].startswith("Every group of completions over the last 5 steps got identical rewards")
    assert "no advantage to learn from" in out[4][0]


def test_rate_warnings_hold_over_the_window_and_in_a_short_run():
    broken = {"completions/clipped_ratio": 1.0, "score/parse_rate": 0.0, "score/bad_gold_rate": 0.25,
              "frac_reward_zero_std": 0.5}
    d = Diagnoser(window=5, max_completion_length=40)
    out = [d.update(broken) for _ in range(5)]
    assert out[:4] == [[]] * 4
    assert [w.split(" ")[0] for w in out[4]] == ["All", "Only", "25%"]
    assert "over the last 5 steps" in out[4][0] and "over the last 5 steps" in out[4][1]
    short = Diagnoser(window=5, max_completion_length=40)
    short.update(broken)
    assert [w.split(" ")[0] for w in short.update(broken, final=True)] == ["All", "Only", "25%"]


@pytest.mark.parametrize("names", [("rewards/margins", "rewards/accuracies"), ("margin", "accuracy")])
def test_preferences_that_are_not_learnt_are_named_after_a_full_window(names):
    margin, accuracy = names
    stuck, learning = {margin: -0.01, accuracy: 0.4}, {margin: 0.3, accuracy: 0.8}
    d = Diagnoser(window=3)
    out = [d.update(stuck) for _ in range(3)]
    assert out[:2] == [[], []] and "not gaining on the rejected ones over the last 3 steps" in out[2][0]
    assert diagnose(learning, steps=3, min_steps=3) == []
    assert Diagnoser(window=5).update(stuck, final=True) == []  # one step is too few to say
