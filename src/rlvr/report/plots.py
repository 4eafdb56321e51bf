"""PNG plots (matplotlib, Agg, no pyplot state): accuracy per task for several models side by side, and the
reward and accuracy curves of a training run from its ``metrics.jsonl`` records."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


def plot_training_curves(records: list[dict[str, Any]], path: str | Path, final_step: int | None = None) -> bool:
    """Reward (mean ± std) and accuracy over training steps: rollout accuracy from ``train`` records and
    held-out accuracy from ``eval`` records (baseline at step 0, final at ``final_step`` or the last step).
    Returns False (and writes nothing) when there is nothing to plot."""
    train = [r for r in records if r.get("event") == "train" and "step" in r]
    evals = [r for r in records if r.get("event") == "eval" and r.get("accuracy") is not None]
    if not train and not evals:
        return False
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
        ax_r.plot(xs, ys, marker="." if len(xs) < 50 else None, label="mean reward")
        ax_r.fill_between(xs, [y - s for y, s in zip(ys, sd)], [y + s for y, s in zip(ys, sd)], alpha=0.2, label="± std")
        ax_r.legend(fontsize=8)
    else:
        ax_r.text(0.5, 0.5, "no training steps logged", ha="center", va="center", transform=ax_r.transAxes)
    ax_r.set(title="Reward", xlabel="step", ylabel="reward")
    rollout = [(r["step"], r["score/accuracy"]) for r in train if r.get("score/accuracy") is not None]
    if rollout:
        ax_a.plot(*zip(*rollout), alpha=0.7, label="rollout accuracy (sampled)")
    if evals:
        points = sorted((eval_step(r), r["accuracy"]) for r in evals)
        ax_a.plot(*zip(*points), marker="o", label="held-out accuracy (greedy)")
        for r in evals:
            if r.get("name") in ("baseline", "final"):
                ax_a.annotate(f"{r['name']} {r['accuracy']:.0%}", (eval_step(r), r["accuracy"]), fontsize=7,
                              textcoords="offset points", xytext=(4, 4))
    ax_a.set(title="Accuracy", xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.05))
    ax_a.legend(fontsize=8)
    for ax in (ax_r, ax_a):
        ax.grid(alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True
