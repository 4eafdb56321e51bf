"""Time and cost: one timed training step per stage (rollout, rewards and training pass apart), one timed
evaluation batch, the disk's write speed, extrapolated to the whole run; priced on the instance type from the dated
price table kept beside the Terraform variables (``infrastructure/aws/prices.yaml``).

The step is the configured loop's own, run for one optimizer step on the loaded model (its weights are thrown away
afterwards; nothing is saved). The reward functions are wrapped with a clock, so in a step of a loop that samples
and rewards, the rollout is the time from the start of training to the first reward call, the rewards the time
between the first call and the end of the last, and the training pass (advantages, reference and policy forward,
backward, optimizer step) the rest up to the end of the step. The run is then

    model load + data + per stage (trainer set-up + max_steps x step) + evaluations x one evaluation
    + checkpoints x (checkpoint bytes / write speed) + the saved model

where a step's rollout and rewards are shared by ``num_iterations`` steps, an evaluation is scaled from the timed
batch by rows, and a checkpoint holds the trained weights (the adapter with LoRA) and the optimizer state.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rlvr.interfaces import Rewards, TrainInputs
from rlvr.preflight.report import Check


@dataclass
class StepTime:
    """One timed step of a stage: seconds of the loop's set-up (trainer, data preparation: once per stage), the
    rollout, the rewards and the training pass; ``rollouts_per_step``: 1 / num_iterations; ``trained``: whether the
    loop made its optimizer step (expert iteration with no correct sample trains nothing, and says so)."""

    stage: str
    max_steps: int
    setup_s: float
    rollout_s: float
    reward_s: float
    train_s: float
    rollouts_per_step: float = 1.0
    metrics: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any], list[Any]]] = field(default_factory=list)  # the step's reward calls
    trained: bool = True

    @property
    def step_s(self) -> float:
        return (self.rollout_s + self.reward_s) * self.rollouts_per_step + self.train_s


class _Clock:
    """The step's events: the metrics it logged and when it ended."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.ended: float | None = None

    def log(self, step: int, metrics: dict[str, float], warnings: list[str]) -> None:
        self.metrics.update(metrics)

    def step_end(self, step: int, model: Any) -> None:
        if self.ended is None:
            self.ended = time.perf_counter()


def _clocked(name: str, fn: Callable, marks: dict[str, float], calls: list[tuple[str, dict[str, Any], list[Any]]]
             ) -> Callable:
    """``fn`` (the reward function ``name``) with the first start and the last end of its calls in ``marks``, and
    each call kept in ``calls``."""
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        marks.setdefault("first", time.perf_counter())
        try:
            values = fn(*args, **kwargs)
            calls.append((name, kwargs, values))
            return values
        finally:
            marks["last"] = time.perf_counter()

    return timed


def time_step(stage: str, loop: Any, max_steps: int, model: Any, tokenizer: Any, train: Any, scorer: Any,
              rewards: Rewards, seed: int) -> StepTime:
    """Run ``loop`` (built with ``max_steps=1`` and no checkpoints) for its one step on ``model``; ``max_steps``:
    the configured stage's. The reward calls the step made (with the completions it sampled) come back in
    ``calls``."""
    marks: dict[str, float] = {}
    calls: list[tuple[str, dict[str, Any], list[Any]]] = []
    clock = _Clock()
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rlvr-preflight-") as out:
        result = loop.train(TrainInputs(model=model, tokenizer=tokenizer, train=train, scorer=scorer,
                                        rewards=Rewards({n: _clocked(n, f, marks, calls)
                                                         for n, f in rewards.functions.items()},
                                                        dict(rewards.weights)),
                                        output_dir=out, seed=seed, events=clock))
        done = time.perf_counter()
    started = done - result.runtime_s
    ended = clock.ended or done
    if "first" in marks:
        rollout, reward, train_s = marks["first"] - started, marks["last"] - marks["first"], ended - marks["last"]
    else:
        rollout, reward, train_s = 0.0, 0.0, ended - started
    iterations = int(loop.settings.get("num_iterations", 1))
    return StepTime(stage, max_steps, started - begun, max(rollout, 0.0), reward, max(train_s, 0.0), 1 / iterations,
                    clock.metrics, calls, trained=result.global_step > 0)


def write_speed(directory: Path, size: int = 64 * 1024**2) -> float:
    """Bytes per second written (and fsynced) to a file in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1024**2)
    fd, path = tempfile.mkstemp(dir=directory, prefix=".preflight-", suffix=".tmp")
    try:
        start = time.perf_counter()
        with os.fdopen(fd, "wb") as f:
            for _ in range(size // len(block)):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        return size / max(time.perf_counter() - start, 1e-6)
    finally:
        Path(path).unlink(missing_ok=True)


def checkpoints(max_steps: int, save_steps: int) -> int:
    """Checkpoints a stage writes: every ``save_steps`` steps and at the last one (none when 0)."""
    if not save_steps:
        return 0
    return len(set(range(save_steps, max_steps + 1, save_steps)) | {max_steps})


def evaluations(baseline: bool, eval_steps: int, stage_steps: list[int]) -> int:
    """Evaluations a run makes: the baseline, every ``eval_steps`` steps inside each stage, one after each."""
    during = sum((steps - 1) // eval_steps for steps in stage_steps) if eval_steps else 0
    return int(baseline) + during + len(stage_steps)


@dataclass
class RunTime:
    """The run's seconds by part (see the module docstring) and what they were scaled from."""

    parts: dict[str, float]
    figures: dict[str, Any]

    @property
    def total_s(self) -> float:
        return sum(self.parts.values())


def duration(seconds: float) -> str:
    """``1 h 02 min``, ``4 min 05 s`` or ``12.3 s``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


def check_time(run: RunTime, steps: list[StepTime], device: str, max_hours: float | None) -> Check:
    """The timed steps and the run they extrapolate to, against ``max_hours``."""
    step = "; ".join(f"{s.stage}: one step {s.step_s:.1f} s (rollout {s.rollout_s:.1f}, rewards {s.reward_s:.2f}, "
                     f"training pass {s.train_s:.1f})" for s in steps)
    shown = ", ".join(f"{k} {duration(v)}" for k, v in run.parts.items() if v >= 0.05)
    summary = f"{step}; the run ≈ {duration(run.total_s)} on {device} ({shown})"
    figures = {"total_s": round(run.total_s, 1), "parts_s": {k: round(v, 2) for k, v in run.parts.items()},
               "steps": [{"stage": s.stage, "max_steps": s.max_steps, "step_s": round(s.step_s, 3),
                          "rollout_s": round(s.rollout_s, 3), "reward_s": round(s.reward_s, 3),
                          "train_s": round(s.train_s, 3), "setup_s": round(s.setup_s, 3), "trained": s.trained}
                         for s in steps],
               "device": device, **run.figures}
    untrained = [s.stage for s in steps if not s.trained]
    if max_hours is not None and run.total_s > max_hours * 3600:
        return Check("time", "fail", summary,
                     f"the run would take about {duration(run.total_s)}, more than preflight.max_hours={max_hours:g}: "
                     "lower train.max_steps, evaluate less often (eval.eval_steps, eval.num_examples), or raise the "
                     "limit.", figures)
    if untrained:
        return Check("time", "warn", summary,
                     f"the timed step of {', '.join(untrained)} made no optimizer step (the loop trained nothing: see "
                     "its console line), so the estimate holds its set-up but not its training steps: the run may "
                     "take longer.", figures)
    return Check("time", "pass", summary, figures=figures)


@dataclass(frozen=True)
class Price:
    """One instance type's hourly price, spot or on-demand, and where the figure comes from."""

    instance: str
    usd_per_hour: float
    on_demand_usd_per_hour: float
    spot: bool
    gpus: int
    gpu_memory_gib: float
    as_of: str
    chosen_by: str


def terraform_default(variables: Path, name: str) -> str | None:
    """The default of Terraform variable ``name`` in a ``variables.tf``, as text (None if not found)."""
    if not variables.is_file():
        return None
    block = re.search(r'variable\s+"' + re.escape(name) + r'"\s*\{(.*?)\n\}', variables.read_text(), re.S)
    value = re.search(r'^\s*default\s*=\s*"?([^"\n]*?)"?\s*$', block.group(1), re.M) if block else None
    return value.group(1).strip() if value else None


def price(table_path: str, instance: str | None, spot: bool | None) -> Price | str:
    """The price of ``instance`` (else the Terraform default's) from the table, or why there is none."""
    import yaml

    table_file = Path(table_path)
    if not table_file.is_file():
        return f"no price table at {table_path} (run from a checkout of rlvr, or set preflight.prices)"
    table = yaml.safe_load(table_file.read_text())
    variables = table_file.parent / "single_gpu" / "variables.tf"
    chosen = "preflight.instance_type"
    if instance is None:
        instance, chosen = terraform_default(variables, "instance_type"), f"the Terraform default ({variables})"
    if spot is None:
        spot = (terraform_default(variables, "spot") or "false").lower() == "true"
    entry = (table.get("instances") or {}).get(instance)
    if entry is None:
        return (f"{instance} is not in {table_path} (instances: {', '.join(table.get('instances') or {})}); "
                "add its hourly price there")
    on_demand = float(entry["on_demand"])
    hourly = on_demand * float(table["spot_fraction"]) if spot else on_demand
    return Price(str(instance), hourly, on_demand, bool(spot), int(entry["gpus"]), float(entry["gpu_memory_gib"]),
                 str(table["as_of"]), chosen)


def check_cost(total_s: float | None, quote: Price | str, max_cost_usd: float | None, measured_on: str) -> Check:
    """What the estimated run costs on the priced instance, against ``max_cost_usd``."""
    if isinstance(quote, str):
        return Check("cost", "skip", quote)
    if total_s is None:
        return Check("cost", "skip", f"{quote.instance}: no time estimate to price (preflight.sample=0)")
    hours = total_s / 3600
    cost = hours * quote.usd_per_hour
    kind = "spot" if quote.spot else "on-demand"
    summary = (f"{quote.instance} ({quote.gpus} GPU, {kind}, chosen by {quote.chosen_by}): ${cost:.2f} for "
               f"{hours:.2f} h at ${quote.usd_per_hour:.3f}/h (on-demand ${hours * quote.on_demand_usd_per_hour:.2f}); "
               f"prices as of {quote.as_of}; the time was measured on {measured_on}")
    figures = {"instance": quote.instance, "spot": quote.spot, "usd_per_hour": round(quote.usd_per_hour, 4),
               "hours": round(hours, 4), "usd": round(cost, 4),
               "on_demand_usd": round(hours * quote.on_demand_usd_per_hour, 4), "prices_as_of": quote.as_of,
               "measured_on": measured_on}
    if max_cost_usd is not None and cost > max_cost_usd:
        return Check("cost", "fail", summary,
                     f"the run would cost about ${cost:.2f} on {quote.instance}, more than "
                     f"preflight.max_cost_usd={max_cost_usd:g}: fewer steps or sweep jobs, spot machines "
                     "(spot=true in Terraform), or a smaller instance.", figures)
    return Check("cost", "pass", summary, figures=figures)
