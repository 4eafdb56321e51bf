"""What a run records, typed: ``results.json`` as :class:`Results`, a training stage as :class:`StageRecord`, and
where a run's sample files go (:func:`samples_path`).

``results.json`` (rewritten whole after every stage; a key is absent until something fills it):

- ``run``: :class:`RunRecord`, how the run was started and how it ended;
- ``data``: the data's stats (rows per split, ...); ``model``: its parameter counts;
- ``baseline``, ``final`` (or ``eval`` for an evaluation-only run): evaluation summaries
  (:meth:`rlvr.interfaces.EvalResult.summary`), and ``during_training``: those every ``eval.eval_steps``;
- ``train``, ``train_history``: a one-stage run's training (a staged run keeps them per stage);
- ``stages``: a :class:`StageRecord` per training stage (or a :class:`SkippedStage`);
- ``pass_rate_filter``, ``curriculum``, ``flat_prompts``: what ``data.difficulty_filter`` and ``data.curriculum``
  did (prompts kept and dropped, levels reached, prompts skipped);
- ``artifacts``: ``{name: path}`` of the files written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Evaluation = dict[str, Any]  # an evaluation as results.json holds it: EvalResult.summary()


def samples_path(directory: Path, evaluation: str) -> Path:
    """Where an evaluation's samples go: ``<directory>/samples_<evaluation>.jsonl``."""
    return directory / f"samples_{evaluation}.jsonl"


@dataclass
class TrainSummary:
    """One training stage's outcome: optimizer steps done, seconds, and the step it resumed from (or None)."""

    global_step: int
    runtime_s: float
    resumed_from_step: int | None = None


@dataclass
class StageRecord:
    """A trained stage: results.json's entry for it and, for a stage of ``pipeline.stages``, its done-marker
    (``stage.json``). ``gate`` is the regression gate's verdict; ``kept`` whether the stage's model was kept;
    ``stopped_pipeline`` whether its regression stopped the stages after it."""

    index: int
    name: str
    dir: str
    step_offset: int
    train: TrainSummary
    history: list[dict[str, float]]
    evaluation: Evaluation
    gate: dict[str, Any]
    kept: bool
    stopped_pipeline: bool

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> StageRecord:
        return cls(**{**record, "train": TrainSummary(**record["train"])})


@dataclass
class SkippedStage:
    """A stage never run: the gate stopped the pipeline at an earlier one."""

    index: int
    name: str
    dir: str
    skipped: str = "the gate stopped the pipeline before it"


@dataclass
class RunRecord:
    """results.json's ``run``: the command and overrides (secrets scrubbed), where it ran, on how many ranks, GPUs
    and CPU threads, the checkpoint it resumed from, the lifecycle stages done, and how it ended (``status``:
    success, failed or stopped; ``error`` or ``stopped`` says why; absent while it runs)."""

    command: str | None
    overrides: list[str]
    run_dir: str
    resumed_from: str | None
    world_size: int
    cuda_visible_devices: str | None
    threads: int
    stages_done: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0
    status: str | None = None
    error: str | None = None
    stopped: str | None = None


@dataclass
class Results:
    """What ``results.json`` holds (see the module docstring)."""

    run: RunRecord
    data: dict[str, Any] | None = None
    model: dict[str, int] | None = None
    baseline: Evaluation | None = None
    eval: Evaluation | None = None
    final: Evaluation | None = None
    during_training: list[Evaluation] = field(default_factory=list)
    train: TrainSummary | None = None
    train_history: list[dict[str, float]] | None = None
    stages: list[StageRecord | SkippedStage] | None = None
    pass_rate_filter: dict[str, Any] | None = None  # data.difficulty_filter's prompts kept and dropped, and why
    curriculum: dict[str, Any] | None = None  # data.curriculum: the levels reached per task and their moves
    flat_prompts: dict[str, Any] | None = None  # data.difficulty_filter.flat_epochs: the prompts skipped
    artifacts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resumed(cls, run: RunRecord, previous: dict[str, Any], step: int | None) -> Results:
        """A resumed run's results: what ``previous`` (the results.json it found) measured that still holds: the
        data, the model, the baseline, the files written, and the evaluations during training up to ``step``
        (None: a fresh run, none)."""
        return cls(run, data=previous.get("data"), model=previous.get("model"), baseline=previous.get("baseline"),
                   artifacts=previous.get("artifacts", {}),
                   during_training=[e for e in previous.get("during_training", [])
                                    if step is not None and (e.get("step") or 0) <= step])

    def to_json(self) -> dict[str, Any]:
        """The plain form written to results.json, unset keys left out."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["run"] = {k: v for k, v in out["run"].items() if v is not None or k not in ("status", "error", "stopped")}
        return out
