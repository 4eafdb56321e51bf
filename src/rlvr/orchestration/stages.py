"""A pipeline of training stages: ``pipeline.stages`` (an ordered mapping ``name: training loop``, each an option
of the ``train`` group with its own settings) and the regression gate between them.

Each stage starts from the model the stage before it left (or rolled back to), and writes
``stages/<i>-<name>/``: its ``checkpoints/``, the samples of its evaluation, ``weights.safetensors`` (the
weights it trained, when kept) and, last of all, ``stage.json``: the done-marker, holding the stage's record
(:class:`rlvr.orchestration.results.StageRecord`: its training summary, metrics per step, evaluation and the
gate's verdict). A resumed run reads the markers: finished stages are not run again, their model is rebuilt from
their weights, and the first unfinished stage continues from its latest checkpoint.

A run without ``pipeline.stages`` has one stage, ``train``, run by the same code; it keeps the plain layout
(``Stage.staged`` false): its checkpoints and its evaluation (``final``) directly in the run directory, and no
marker or weights file (its checkpoints say where it stopped; ``save`` writes the model).

A loop run in rounds (``train.rounds=3``: expert iteration, GRPO rounds with the gate between them) is that many
stages, ``round1``, ``round2``, ... (``<name>-round1``, ... in ``pipeline.stages``): each round is trained,
evaluated, judged and resumed like any stage, starts from the model the last kept round left, and gets its own
seed (the run's seed + round - 1), so a round after a rolled-back one draws other samples and another data order.

Steps count on across stages (a stage's step offset is the sum of the earlier stages' ``max_steps``), so
``metrics.jsonl``, plots and W&B see one increasing step axis.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr import distributed
from rlvr.errors import ConfigError
from rlvr.evaluation import RegressionGate
from rlvr.interfaces import AtLeastOne, InRounds, TrainingLoop
from rlvr.model import save_weights
from rlvr.orchestration.context import write_atomic
from rlvr.orchestration.results import SkippedStage, StageRecord, samples_path

MARKER = "stage.json"
WEIGHTS = "weights.safetensors"
RESERVED = ("baseline", "final", "eval")  # the run's own evaluations: no stage may take their names


@dataclass(frozen=True)
class StagePlan:
    """Args:
        stages: ``{name: training loop}`` run in order; empty runs the one loop in ``train`` (the default).
            In a config: ``defaults: [/train@pipeline.stages.sft: sft, /train@pipeline.stages.grpo: grpo]``,
            then ``pipeline.stages.grpo.max_steps=50`` on the command line.
        gate: the regression gate applied after every stage (:class:`rlvr.evaluation.RegressionGate`).
        trial: caps on the sizes of every training loop of the run (``train``, or each stage), each applied where
            the loop's class has that setting, a smaller value kept: ``{max_steps: 2, num_generations: 4}``.
            ``experiment=smoke`` sets them, so one trial fits every algorithm (:func:`apply_trial`).
    """

    stages: dict[str, TrainingLoop] = field(default_factory=dict)
    gate: RegressionGate = field(default_factory=RegressionGate)
    trial: dict[str, AtLeastOne] = field(default_factory=dict)

    @classmethod
    def of(cls, pipeline: StagePlan | dict[str, Any]) -> StagePlan:
        """The plan from its config (a mapping once built by Hydra), with stage names that can name files."""
        if isinstance(pipeline, dict):
            gate = pipeline.get("gate") or {}
            pipeline = cls(stages=dict(pipeline.get("stages") or {}),
                           gate=gate if isinstance(gate, RegressionGate) else RegressionGate(**gate),
                           trial=dict(pipeline.get("trial") or {}))
        for name in pipeline.stages:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or name in RESERVED:
                raise ConfigError(f"pipeline.stages.{name}: a stage name is letters, digits, _ and - (it names a "
                                  "directory and an evaluation), and not baseline, final or eval.")
        return pipeline


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
    def events(self) -> tuple[str, str]:
        """Its training and evaluation as observers see them: ``train:<name>``, ``eval:<name>`` (a plain run's
        ``train``, ``final_eval``)."""
        return (f"train:{self.name}", f"eval:{self.name}") if self.staged else ("train", "final_eval")

    @property
    def evaluation(self) -> str:
        """The name of its evaluation: the stage's (a plain run's is the run's ``final``)."""
        return self.name if self.staged else "final"

    @property
    def samples(self) -> Path:
        return samples_path(self.dir, self.evaluation)

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def weights(self) -> Path:
        return self.dir / WEIGHTS

    def record(self) -> StageRecord | None:
        """Its record if it finished before (its done-marker), else None (always None for a plain run's stage)."""
        path = self.dir / MARKER
        return StageRecord.from_json(json.loads(path.read_text())) if self.staged and path.is_file() else None

    def finish(self, record: StageRecord, model: Any) -> None:
        """Mark a staged stage done: its weights when kept, then the marker (last: a kill before it reruns the
        stage). A plain run's stage keeps neither (``save`` writes its model)."""
        if not self.staged:
            return
        if record.kept:
            save_weights(model, self.weights)  # every rank calls it (sharded weights are gathered); rank 0 writes
        if distributed.is_main():
            write_atomic(self.dir / MARKER, json.dumps(asdict(record), indent=2, default=str))

    def skipped(self) -> SkippedStage:
        return SkippedStage(self.index, self.name, str(self.dir))


def layout(run_dir: Path, plan: StagePlan, train: TrainingLoop | None) -> list[Stage]:
    """The training stages of a run in order: ``plan.stages``, else the plain run's one ``train``, else none (the
    run only evaluates); a loop with ``rounds`` once per round (:func:`rounds`). A plain run in one round keeps the
    plain layout: its files directly under the run directory."""
    loops, one = (plan.stages, False) if plan.stages else ({"train": train} if train else {}, True)
    named = [(f"{name}-round{r}" if n > 1 and not one else f"round{r}" if n > 1 else name, loop, r)
             for name, loop in loops.items() for n in [rounds(loop)] for r in range(1, n + 1)]
    staged = not one or len(named) > 1
    stages, offset = [], 0
    for i, (name, loop, r) in enumerate(named, start=1):
        where = run_dir / "stages" / f"{i}-{name}" if staged else run_dir
        stages.append(Stage(i, name, loop, where, offset, staged, r))
        offset += loop.max_steps
    return stages


def apply_trial(cfg: DictConfig) -> None:
    """Cap every training loop's sizes in ``cfg`` (the whole config, defaults filled) at ``pipeline.trial``, in
    place and before the loops are built, so their own checks see the sizes they run with."""
    trial = OmegaConf.select(cfg, "pipeline.trial") or {}
    loops = [cfg.train] if cfg.get("train") is not None else []
    loops += list((OmegaConf.select(cfg, "pipeline.stages") or {}).values())
    for loop in loops:
        for key, cap in trial.items():
            value = loop.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                loop[key] = cap


def rounds(loop: TrainingLoop) -> int:
    """How many rounds ``loop`` runs (``train.rounds``); a loop without that setting runs once."""
    return loop.rounds if isinstance(loop, InRounds) else 1
