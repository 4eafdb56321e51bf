"""PNG plots (matplotlib, Agg, no pyplot state): accuracy per task for several models side by side, the
reward and accuracy curves of a training run from its ``metrics.jsonl`` records, and a curriculum's levels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.interfaces import PREFERENCE_ACCURACY, PREFERENCE_MARGIN


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def plot_benchmark(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy",
                   title: str = "Accuracy per task") -> bool:
    """Grouped bars: one group per task, one bar per model (rows: ``{model, task, <metric>}``).
    Returns False (and writes nothing) when no row has a value."""
    rows = [r for r in rows if r.get(metric) is not None]
    if not rows:
        return False
    models = list(dict.fromkeys(r["model"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    value = {(r["model"], r["task"]): float(r[metric]) for r in rows}
    fig = _figure(max(5.0, 1.1 * len(tasks) * max(1, len(models)) ** 0.5 + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        xs = [t + (i - (len(models) - 1) / 2) * width for t in range(len(tasks))]
        ys = [value.get((model, task), 0.0) for task in tasks]
        bars = ax.bar(xs, ys, width=width, label=model)
        ax.bar_label(bars, labels=[f"{y:.0%}" for y in ys], fontsize=7, padding=1)
    ax.set_xticks(range(len(tasks)), tasks, rotation=20 if len(tasks) > 4 else 0, ha="right" if len(tasks) > 4 else "center")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


def plot_training_curves(records: list[dict[str, Any]], path: str | Path, final_step: int | None = None,
                         reward_range: tuple[float, float] | None = None) -> bool:
    """Write :func:`training_curves_figure` to ``path``; False (and nothing written) when there is nothing to plot."""
    fig = training_curves_figure(records, final_step, reward_range)
    if fig is None:
        return False
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


def training_curves_figure(records: list[dict[str, Any]], final_step: int | None = None,
                           reward_range: tuple[float, float] | None = None) -> Any:
    """Reward and accuracy over training steps, from ``metrics.jsonl`` records (None when there are none).

    - Reward: the per-step mean with a ± std band. The band is clipped to the rewards that can occur:
      ``reward_range`` when the caller knows it, else [0, 1] (a verifiable reward scores an answer from wrong to
      right) widened to any per-step mean outside it (weighted sums, penalties). Unclipped, a 0/1 reward's band
      reaches -0.2 and 1.2, rewards no completion got.
    - Without a reward: the training loss; preference training adds the reward margin (chosen minus rejected)
      and shows preference accuracy (training pairs ranked right) in place of rollout accuracy; supervised
      fine-tuning shows token accuracy there.
    - Accuracy: rollout accuracy per step (sampled completions), faint, under its moving average over
      ``SMOOTHING`` steps; held-out accuracy (greedy) as markers where evaluations happened (baseline at step 0,
      final at ``final_step`` or the last step), joined by a line only when there were evaluations during training.
    """
    train = [r for r in records if r.get("event") == "train" and "step" in r]
    evals = [r for r in records if r.get("event") == "eval" and r.get("accuracy") is not None]
    if not train and not evals:
        return None
    last = final_step or max([r["step"] for r in train] or [0])

    def eval_step(r: dict[str, Any]) -> int:
        if r.get("step") is not None:
            return int(r["step"])
        return 0 if r.get("name") == "baseline" else last

    fig = _figure(10, 3.6)
    ax_r, ax_a = fig.subplots(1, 2)
    rewards = [(r["step"], r["reward"], r.get("reward_std", 0.0)) for r in train if r.get("reward") is not None]
    if rewards:
        xs, ys, sd = zip(*rewards)
        lo, hi = reward_range or (min(0.0, *ys), max(1.0, *ys))
        ax_r.plot(xs, ys, marker="." if len(xs) < 50 else None, label="mean reward")
        ax_r.fill_between(xs, [max(lo, y - s) for y, s in zip(ys, sd)], [min(hi, y + s) for y, s in zip(ys, sd)],
                          alpha=0.2, label=f"± std (within [{lo:g}, {hi:g}])")
        ax_r.legend(fontsize=8)
        ax_r.set(title="Reward", xlabel="step", ylabel="reward")
    elif losses := [(r["step"], r["loss"]) for r in train if r.get("loss") is not None]:
        ax_r.plot(*zip(*losses), marker="." if len(losses) < 50 else None, label="training loss")  # no reward
        margins = [(r["step"], v) for r in train if (v := _first(r, PREFERENCE_MARGIN)) is not None]
        if margins:  # preference training: how far chosen completions score above rejected ones
            ax_r.plot(*zip(*margins), marker="." if len(margins) < 50 else None, label="reward margin")
        ax_r.legend(fontsize=8)
        ax_r.set(title="Loss and reward margin" if margins else "Loss", xlabel="step",
                 ylabel="loss, margin" if margins else "loss")
    else:
        ax_r.text(0.5, 0.5, "no training steps logged", ha="center", va="center", transform=ax_r.transAxes)
        ax_r.set(title="Reward", xlabel="step", ylabel="reward")
    rollout = [(r["step"], r["score/accuracy"]) for r in train if r.get("score/accuracy") is not None]
    rollout_label = "rollout accuracy (sampled)"
    if not rollout:  # preference training: the share of training pairs ranked right
        rollout = [(r["step"], v) for r in train if (v := _first(r, PREFERENCE_ACCURACY)) is not None]
        rollout_label = "preference accuracy (training pairs)"
    if not rollout:  # supervised fine-tuning: how much of the gold completion the model predicts
        rollout = [(r["step"], r["mean_token_accuracy"]) for r in train if r.get("mean_token_accuracy") is not None]
        rollout_label = "token accuracy (training batch)"
    if rollout:
        xs, ys = zip(*rollout)
        smooth = len(ys) > SMOOTHING
        ax_a.plot(xs, ys, alpha=0.3 if smooth else 0.7, label=rollout_label)
        if smooth:
            ax_a.plot(xs, moving_average(ys, SMOOTHING), color=ax_a.lines[-1].get_color(),
                      label=f"{rollout_label.split(' (')[0]}, {SMOOTHING}-step average")
    if evals:
        points = sorted((eval_step(r), r["accuracy"]) for r in evals)
        during = any(r.get("name") not in ("baseline", "final") for r in evals)
        ax_a.plot(*zip(*points), marker="o", linestyle="-" if during else "none", label="held-out accuracy (greedy)")
        for r in evals:
            if r.get("name") in ("baseline", "final"):
                ax_a.annotate(f"{r['name']} {r['accuracy']:.0%}", (eval_step(r), r["accuracy"]), fontsize=7,
                              textcoords="offset points", xytext=(4, 4))
    ax_a.set(title="Accuracy", xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.05))
    if ax_a.lines:
        ax_a.legend(fontsize=8)
    else:
        ax_a.text(0.5, 0.5, "no accuracy logged", ha="center", va="center", transform=ax_a.transAxes)
    for ax in (ax_r, ax_a):
        ax.grid(alpha=0.3)
    return fig


def plot_levels(records: list[dict[str, Any]], path: str | Path) -> bool:
    """A curriculum's level per task over training steps (``curriculum/level/<task>``), with the training accuracy
    over each task's window below; False (and nothing written) when no level was logged."""
    train = [r for r in records if r.get("event") == "train" and "step" in r]
    tasks = sorted({k.removeprefix("curriculum/level/") for r in train for k in r if k.startswith("curriculum/level/")})
    if not tasks:
        return False
    fig = _figure(10, 3.6)
    ax_l, ax_a = fig.subplots(1, 2)
    for task in tasks:
        levels = [(r["step"], r[f"curriculum/level/{task}"]) for r in train if f"curriculum/level/{task}" in r]
        ax_l.step(*zip(*levels), where="post", label=task)
        window = [(r["step"], r[f"curriculum/accuracy/{task}"]) for r in train if f"curriculum/accuracy/{task}" in r]
        if window:
            ax_a.plot(*zip(*window), label=task)
    top = max(r[f"curriculum/level/{t}"] for r in train for t in tasks if f"curriculum/level/{t}" in r)
    ax_l.set(title="Curriculum level", xlabel="step", ylabel="level", ylim=(-0.2, max(1.0, top) + 0.2))
    ax_l.yaxis.get_major_locator().set_params(integer=True)
    ax_a.set(title="Training accuracy over the window that moves the level", xlabel="step", ylabel="accuracy",
             ylim=(-0.02, 1.05))
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


SMOOTHING = 5  # steps in the moving average of rollout accuracy


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    return next((record[k] for k in keys if record.get(k) is not None), None)


def moving_average(values: list[float] | tuple[float, ...], window: int) -> list[float]:
    """Centred moving average; the window shrinks at both ends, so the curve spans every step.

    >>> moving_average([0, 0, 1, 1, 1], 3)
    [0.0, 0.3333333333333333, 0.6666666666666666, 1.0, 1.0]
    """
    half, out = window // 2, []
    for i in range(len(values)):
        part = values[max(0, i - half) : i + half + 1]
        out.append(sum(part) / len(part))
    return out
