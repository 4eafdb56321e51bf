"""The training-curves plot draws only what was measured: held-out accuracy where evaluations happened, a reward
band inside the rewards that can occur, and rollout accuracy smoothed over its noise."""

from __future__ import annotations

import pytest

from rlvr.report.plots import moving_average, training_curves_figure


def _train(steps, reward=0.5, reward_std=0.5, accuracy=None):
    return [{"event": "train", "step": s, "reward": reward if not callable(reward) else reward(s),
             "reward_std": reward_std, **({"score/accuracy": accuracy(s)} if accuracy else {})} for s in steps]


def _eval(name, accuracy, step=None):
    return {"event": "eval", "name": name, "accuracy": accuracy, "step": step}


def _line(ax, label):
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line


def _band(ax):
    (band,) = ax.collections
    return band.get_paths()[0].vertices[:, 1]


def test_held_out_accuracy_is_markers_only_when_measured_before_and_after():
    records = [_eval("baseline", 0.2), *_train(range(1, 31)), _eval("final", 0.4, step=30)]
    _, ax_a = training_curves_figure(records).axes
    held_out = _line(ax_a, "held-out accuracy (greedy)")
    assert list(held_out.get_xdata()) == [0, 30] and list(held_out.get_ydata()) == [0.2, 0.4]
    assert held_out.get_linestyle() == "None" and held_out.get_marker() == "o"  # no line across 30 unmeasured steps


def test_held_out_accuracy_is_joined_when_evaluated_during_training():
    records = [_eval("baseline", 0.2), *_train(range(1, 31)), _eval("step_10", 0.3, step=10),
               _eval("step_20", 0.35, step=20), _eval("final", 0.4, step=30)]
    _, ax_a = training_curves_figure(records).axes
    held_out = _line(ax_a, "held-out accuracy (greedy)")
    assert list(held_out.get_xdata()) == [0, 10, 20, 30] and held_out.get_linestyle() == "-"


def test_reward_band_stays_within_the_rewards_that_can_occur():
    records = _train(range(1, 11), reward=lambda s: 0.1 if s % 2 else 0.9, reward_std=0.3)
    ax_r, _ = training_curves_figure(records).axes
    band = _band(ax_r)
    assert band.min() == pytest.approx(0.0) and band.max() == pytest.approx(1.0)  # not -0.2 .. 1.2
    assert "within [0, 1]" in ax_r.get_legend().get_texts()[1].get_text()
    ax_r, _ = training_curves_figure(records, reward_range=(-1.0, 2.0)).axes
    assert _band(ax_r).min() == pytest.approx(-0.2) and _band(ax_r).max() == pytest.approx(1.2)


def test_reward_band_widens_to_means_outside_zero_one():
    records = _train(range(1, 6), reward=lambda s: -3.0 + s, reward_std=0.5)  # a penalty: means -2 .. 2
    ax_r, _ = training_curves_figure(records).axes
    band = _band(ax_r)
    assert band.min() == pytest.approx(-2.0) and band.max() == pytest.approx(2.0)


def test_rollout_accuracy_is_smoothed_over_the_faint_raw_curve():
    noisy = [0.0, 1.0, 0.0, 1.0, 0.25, 0.75, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0]
    records = _train(range(1, 13), accuracy=lambda s: noisy[s - 1])
    _, ax_a = training_curves_figure(records).axes
    raw = _line(ax_a, "rollout accuracy (sampled)")
    smooth = _line(ax_a, "rollout accuracy, 5-step average")
    assert list(raw.get_ydata()) == noisy and raw.get_alpha() == 0.3
    assert list(smooth.get_ydata()) == pytest.approx(moving_average(noisy, 5))
    assert max(smooth.get_ydata()) - min(smooth.get_ydata()) < 0.5  # the 0/1 zigzag is gone
    _, ax_short = training_curves_figure(_train([1, 2], accuracy=lambda s: 0.5)).axes
    assert [ln.get_label() for ln in ax_short.lines] == ["rollout accuracy (sampled)"]  # too short to average


def test_moving_average_keeps_every_step():
    assert moving_average([1.0], 5) == [1.0]
    assert moving_average([0.0, 1.0, 0.0, 1.0], 3) == pytest.approx([0.5, 1 / 3, 2 / 3, 0.5])


def test_a_supervised_run_plots_its_loss_and_token_accuracy():
    from rlvr.report.plots import training_curves_figure

    records = [{"event": "train", "step": s, "loss": 1.0 / s, "mean_token_accuracy": 0.5 + s / 20} for s in range(1, 8)]
    records.append({"event": "eval", "name": "baseline", "accuracy": 0.4, "step": None})
    fig = training_curves_figure(records)
    left, right = fig.axes
    assert left.get_title() == "Loss" and list(left.lines[0].get_ydata()) == [1.0 / s for s in range(1, 8)]
    labels = [line.get_label() for line in right.lines]
    assert "token accuracy (training batch)" in labels and "token accuracy, 5-step average" in labels


@pytest.mark.parametrize(("margin", "accuracy"), [("rewards/margins", "rewards/accuracies"), ("margin", "accuracy")])
def test_a_preference_run_plots_loss_margin_and_preference_accuracy(margin, accuracy):
    records = [{"event": "train", "step": s, "loss": 0.7 - s / 20, margin: s / 10, accuracy: 0.5 + s / 20,
                "mean_token_accuracy": 0.1} for s in range(1, 4)]
    left, right = training_curves_figure(records).axes
    assert left.get_title() == "Loss and reward margin"
    assert list(_line(left, "reward margin").get_ydata()) == [0.1, 0.2, 0.3]
    assert list(_line(right, "preference accuracy (training pairs)").get_ydata()) == [0.55, 0.6, 0.65]
