"""A pipeline of training stages: ``pipeline.stages`` (an ordered mapping ``name: training loop``, each an option
of the ``train`` group with its own settings) and the regression gate between them.

Each stage starts from the model the stage before it left (or rolled back to), and writes
``stages/<i>-<name>/``: its ``checkpoints/``, the samples of its evaluation, ``weights.safetensors`` (the
weights it trained, when kept) and, last of all, ``stage.json``: the done-marker, holding the stage's training
summary, its metrics per step, its evaluation and the gate's verdict. A resumed run reads the markers: finished
stages are not run again, their model is rebuilt from their weights, and the first unfinished stage continues
from its latest checkpoint.

A loop run in rounds (``train.rounds=3``: expert iteration, GRPO rounds with the gate between them) is that many
stages, ``round1``, ``round2``, ... (``<name>-round1``, ... in ``pipeline.stages``): each round is trained,
evaluated, judged and resumed like any stage, starts from the model the last kept round left, and gets its own
seed (the run's seed + round - 1), so a round after a rolled-back one draws other samples and another data order.

Steps count on across stages (a stage's step offset is the sum of the earlier stages' ``max_steps``), so
``metrics.jsonl``, plots and W&B see one increasing step axis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.evaluation import RegressionGate
from rlvr.interfaces import InRounds, TrainingLoop
from rlvr.orchestration.context import write_atomic

MARKER = "stage.json"
WEIGHTS = "weights.safetensors"


@dataclass(frozen=True)
class StagePlan:
    """Args:
        stages: ``{name: training loop}`` run in order; empty runs the one loop in ``train`` (the default).
            In a config: ``defaults: [/train@pipeline.stages.sft: sft, /train@pipeline.stages.grpo: grpo]``,
            then ``pipeline.stages.grpo.max_steps=50`` on the command line.
        gate: the regression gate applied after every stage (:class:`rlvr.evaluation.RegressionGate`).
    """

    stages: dict[str, TrainingLoop] = field(default_factory=dict)
    gate: RegressionGate = field(default_factory=RegressionGate)


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its position (1-based), name, loop, directory, first global step, whether it is one of
    several (``staged``: its own directory and done-marker; a plain run's one ``train`` is not), and which round of
    its loop it is (from 1)."""

    index: int
    name: str
    loop: TrainingLoop
    dir: Path
    offset: int
    staged: bool = True
    round: int = 1

    def seed(self, run_seed: int) -> int:
        """The seed its training gets: the run's, plus one per round before this one (rounds draw other samples)."""
        return run_seed + self.round - 1

    @property
    def label(self) -> str:
        return f"{self.index}-{self.name}"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def weights(self) -> Path:
        return self.dir / WEIGHTS

    def record(self) -> dict[str, Any] | None:
        """The done-marker's content, or None while the stage is unfinished."""
        path = self.dir / MARKER
        return json.loads(path.read_text()) if path.is_file() else None

    def mark_done(self, record: dict[str, Any]) -> None:
        write_atomic(self.dir / MARKER, json.dumps(record, indent=2, default=str))


def layout(run_dir: Path, loops: dict[str, TrainingLoop], one_stage: bool) -> list[Stage]:
    """The stages of a run in order, a loop with ``rounds`` once per round (:func:`rounds`). A one-stage run
    (``train`` in one round, no ``pipeline.stages``) keeps the plain layout: its checkpoints directly under the run
    directory."""
    named = [(f"{name}-round{r}" if n > 1 and not one_stage else f"round{r}" if n > 1 else name, loop, r)
             for name, loop in loops.items() for n in [rounds(loop)] for r in range(1, n + 1)]
    staged = not one_stage or len(named) > 1
    stages, offset = [], 0
    for i, (name, loop, r) in enumerate(named, start=1):
        where = run_dir / "stages" / f"{i}-{name}" if staged else run_dir
        stages.append(Stage(i, name, loop, where, offset, staged, r))
        offset += loop.max_steps
    return stages


def rounds(loop: TrainingLoop) -> int:
    """How many rounds ``loop`` runs (``train.rounds``); a loop without that setting runs once."""
    return loop.rounds if isinstance(loop, InRounds) else 1
