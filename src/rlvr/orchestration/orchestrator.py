"""The pipeline: one component per config group, driven through a fixed lifecycle

    setup -> data -> model -> rewards -> baseline_eval -> train -> final_eval -> save   (teardown always)

with observers told about every stage. With ``pipeline.stages`` (:mod:`rlvr.orchestration.stages`) the training
part repeats per stage, each judged by the regression gate: ``train:<name> -> eval:<name>`` for every stage,
then ``save``; a plain run is the same code over its one stage. Each stage is a short method that gets what it
needs as arguments (the run context and earlier stages' outputs), delegates to a component and returns its
output; what the run measured is kept typed in ``ctx.results`` (:mod:`rlvr.orchestration.results`). The
orchestrator holds no algorithm and parses no strings.

    pipeline = build_pipeline(cfg)     # validate every _target_ node, then construct (nothing loads yet)
    pipeline.run(run_dir)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from rlvr import distributed
from rlvr.config import build, import_target, secrets, validate, with_defaults
from rlvr.errors import ConfigError, Stopped
from rlvr.interfaces import (
    DataComponent,
    DataSplits,
    EvalResult,
    EvaluationComponent,
    ModelComponent,
    PromptComponent,
    RewardComponent,
    StreamingData,
    StreamingLoop,
    TakesFeed,
    TrainingLoop,
    TrainInputs,
    TrainResult,
    observer_problem,
)
from rlvr.model import count_parameters, full_state_dict, load_weights, restore, trainable_state
from rlvr.observers import Observers
from rlvr.orchestration.context import RunContext
from rlvr.orchestration.results import Evaluation, Results, RunRecord, StageRecord, TrainSummary, samples_path
from rlvr.orchestration.resume import ResumePoint, resume_point
from rlvr.orchestration.stages import Stage, StagePlan, apply_trial, layout
from rlvr.scoring import Scorer
from rlvr.train.checkpoints import STATE_FILE, checkpoint_step

log = logging.getLogger(__name__)


def build_pipeline(cfg: DictConfig) -> PipelineOrchestrator:
    """Check the whole config (every ``_target_`` node against its signature), then build the pipeline and its
    components. Cheap: no model or dataset is loaded, so a mistake fails in seconds with a ConfigError."""
    cfg = with_defaults(cfg)
    validate(cfg)
    apply_trial(cfg)
    root = import_target(cfg.get("_target_"), "_target_")
    if not (isinstance(root, type) and issubclass(root, PipelineOrchestrator)):
        raise ConfigError(f"The config's root _target_ must be rlvr.orchestration.PipelineOrchestrator, got "
                          f"{cfg.get('_target_')}.")
    config = OmegaConf.to_container(cfg, resolve=True)
    secrets.warn_if_any(config)
    return build(cfg, _partial_=True)(config=config)  # the components from their nodes, then the run's config


class PipelineOrchestrator:
    """Runs one RLVR job and writes everything into a run directory.

    Args:
        data, prompts, model, eval: the components (one option of each config group).
        reward, train: the reward functions and the training loop; both null evaluates the model only
            (``setup -> data -> model -> rewards -> eval``; the benchmark's pipeline).
        pipeline: ``stages`` (training loops run one after another, in place of ``train``) and the regression
            ``gate`` judging each stage (or the one ``train`` stage) against the evaluation before it; see
            :class:`rlvr.orchestration.stages.StagePlan`.
        observers: ``{name: observer}``; each gets the events it defines (see :mod:`rlvr.observers.base`).
        seed: seed for sampling, initialisation and data order.
        output_dir: the run directory; null lets the entry point choose (Hydra's ``outputs/<date>/<time>``).
        save_model: save the trained model (full weights, or only the adapter with LoRA) to ``model/``.
        resume: ``auto`` (the default) continues a run found in the run directory from its latest complete
            checkpoint: finished stages are skipped, seen data is not replayed, metrics are cut back to the
            checkpoint's step. So rerunning a killed command with the same ``output_dir`` picks up where it
            stopped; a new directory simply starts. A path names a checkpoint. null refuses a directory that
            already holds a run.
        resume_other_commit: continue from a checkpoint written by another commit of the code (its
            ``rlvr_state.json`` records the commit). False (the default) refuses, so a resumed run never mixes
            two versions of the code without being told to.
        config: not a setting: the whole config, resolved (``build_pipeline`` gives it). It is written to
            ``config.yaml`` and given to observers with secret-looking settings redacted, and every secret value
            it holds is scrubbed from the files the run writes (:mod:`rlvr.config.secrets`).
    """

    def __init__(
        self,
        data: DataComponent,
        prompts: PromptComponent,
        model: ModelComponent,
        eval: EvaluationComponent,
        reward: RewardComponent | None = None,
        train: TrainingLoop | None = None,
        pipeline: StagePlan = StagePlan(),
        observers: dict[str, Any] | None = None,
        seed: int = 0,
        output_dir: str | None = None,
        save_model: bool = True,
        resume: str | None = "auto",
        resume_other_commit: bool = False,
        *,
        config: dict[str, Any],
    ):
        if resume not in (None, "auto") and not (Path(resume) / STATE_FILE).is_file():
            raise ConfigError(f"resume={resume}: not a complete checkpoint (it has no {STATE_FILE}); use "
                              "resume=auto or a checkpoint-N directory of a run.")
        self.plan = StagePlan.of(pipeline)
        if self.plan.stages and train is not None:
            raise ConfigError("pipeline.stages replaces train (each stage has its own training settings): add "
                              "~train, and set a stage's settings as pipeline.stages.<name>.<key>=...")
        if (reward is None) != (train is None and not self.plan.stages):
            raise ConfigError("reward and training go together: set reward and train (or pipeline.stages) for "
                              "training, or neither to evaluate only.")
        loops = [(f"pipeline.stages.{k}", v) for k, v in self.plan.stages.items()] + [("train", train)]
        for key, value, protocol in (("data", data, DataComponent), ("prompts", prompts, PromptComponent),
                                     ("model", model, ModelComponent), ("reward", reward, RewardComponent),
                                     *((k, v, TrainingLoop) for k, v in loops), ("eval", eval, EvaluationComponent)):
            if value is not None and not isinstance(value, protocol):
                raise ConfigError(f"{key}: {type(value).__name__} does not implement {protocol.__name__} "
                                  f"(see rlvr.interfaces).")
        for name, observer in (observers or {}).items():
            if (problem := observer_problem(observer)) is not None:
                raise ConfigError(f"observers.{name}: {type(observer).__name__} is no observer: {problem} (see "
                                  "rlvr.interfaces.Observer).")
        for key, loop in loops:  # a loop that trains a scorer (reward model, PRM) needs an evaluator that takes one
            trains, evaluates = getattr(loop, "trains", "policy"), getattr(eval, "evaluates", None)
            if loop is not None and evaluates is not None and trains not in evaluates:
                raise ConfigError(f"{key} ({type(loop).__name__}) trains a {trains.replace('_', ' ')}, which scores "
                                  f"text and does not generate; eval ({type(eval).__name__}) evaluates "
                                  f"{' or '.join('a ' + k.replace('_', ' ') for k in sorted(evaluates))}: use "
                                  "eval=best_of_n"
                                  + (" or eval=pairwise" if trains == "reward_model" else "") + ".")
        if isinstance(data, StreamingData) and data.streaming:
            for key, loop in loops:
                if loop is not None and not isinstance(loop, StreamingLoop):
                    raise ConfigError(f"data.streaming=true: {key} ({type(loop).__name__}) trains on rows held in "
                                      "memory; train=grpo and train=sft stream. Set data.streaming=false.")
                if loop is not None:
                    loop.check_streaming()
        measures = eval.measures() if callable(getattr(eval, "measures", None)) else None  # None: not said
        unmeasured = sorted(self.plan.gate.watched - measures) if self.plan.gate.enabled and measures else []
        if unmeasured and (train is not None or self.plan.stages):
            raise ConfigError(f"pipeline.gate watches {unmeasured[0]}, which eval ({type(eval).__name__}) does not "
                              "measure: ref_perplexity needs eval.validator.reference, nli_* eval.validator.nli, "
                              "self_consistency eval.k >= 2 (eval=validated sets all but nli).")
        self.data, self.prompts, self.model, self.reward = data, prompts, model, reward
        self.trainer, self.evaluator = train, eval
        self.observers = dict(observers or {})
        self.seed, self.output_dir, self.save_model, self.resume = seed, output_dir, save_model, resume
        self.resume_other_commit = resume_other_commit
        self.config: dict[str, Any] = secrets.redact(config)  # as written to config.yaml and given to observers
        self.secrets: list[str] = secrets.known_values(config)  # strings scrubbed from every file the run writes

    # --- lifecycle -------------------------------------------------------------------------------------------
    def run(self, run_dir: str | Path | None = None, overrides: list[str] | None = None,
            command: str | None = None) -> dict[str, Any]:
        """Run every stage; returns what ``results.json`` holds. An exception reaches observers as a failed
        end (a :class:`Stopped` as a stopped one), after ``results.json`` is written with whatever was measured."""
        run_dir = Path(run_dir or self.output_dir or "outputs/run")
        stages = self.stages(run_dir)
        start = resume_point(run_dir, stages, self.resume, self.config, self.resume_other_commit)
        distributed.barrier()  # every rank has read the run directory before the main one writes to it
        if start.finished:
            log.info("[rlvr] %s holds a finished run: nothing to resume.", run_dir)
            return start.previous
        ctx = self.begin(run_dir, start, overrides, command)
        status, error = "failed", None
        try:
            self._stage(ctx, "setup", self.setup, ctx)
            splits = self._stage(ctx, "data", self.load_data, ctx)
            model, tokenizer = self._stage(ctx, "model", self.load_model, ctx)
            scorer = self._stage(ctx, "rewards", self.build_scorer, ctx)
            if splits.pass_rate_filter is not None and stages:
                splits = self._stage(ctx, "difficulty_filter", self.filter_prompts, ctx, model, tokenizer, splits,
                                     scorer)
            if not stages:  # evaluation only
                self._stage(ctx, "eval", self.evaluate, ctx, "eval", model, tokenizer, splits, scorer)
            else:
                if self.evaluator.baseline and ctx.results.baseline is None:
                    self._stage(ctx, "baseline_eval", self.evaluate, ctx, "baseline", model, tokenizer, splits,
                                scorer)
                model, gathered = self.run_stages(ctx, stages, model, tokenizer, splits, scorer, start.checkpoint)
                if self.save_model:
                    self._stage(ctx, "save", self.save, ctx, model, tokenizer, gathered)
            status = "success"
        except Stopped as e:  # a signal or a non-finite loss, after a checkpoint: the entry point says how to resume
            status = "stopped"
            ctx.results.run.stopped = str(e)
            raise
        except BaseException as e:
            error = e
            raise
        finally:
            self.teardown(ctx, status, error)
        return ctx.results.to_json()

    def begin(self, run_dir: Path, start: ResumePoint, overrides: list[str] | None, command: str | None
             ) -> RunContext:
        """The run's context: its results (what a resumed run keeps of the last one's, and how this one was
        started, secrets scrubbed), Hydra's files scrubbed too, and ``on_pipeline_start`` told."""
        import torch

        hide = lambda text: secrets.scrub(text, self.secrets)  # noqa: E731 - a key typed on the command line
        record = RunRecord(command=hide(command) if command else command, overrides=[hide(o) for o in overrides or []],
                           run_dir=str(run_dir), resumed_from=str(start.checkpoint) if start.checkpoint else None,
                           world_size=distributed.world_size(),
                           cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"), threads=torch.get_num_threads())
        ctx = RunContext(run_dir, self.seed, Observers(list(self.observers.values())),
                         Results.resumed(record, start.previous, start.step), main=distributed.is_main(),
                         secrets=self.secrets)
        run_dir.mkdir(parents=True, exist_ok=True)
        if ctx.main:  # Hydra wrote the command line and the config as given before we ran
            secrets.scrub_files([*run_dir.glob(".hydra/*.yaml"), *run_dir.parent.glob("multirun.yaml")], self.secrets)
        ctx.emit("on_pipeline_start", config=self.config, run_dir=str(run_dir), resume_step=start.step)
        return ctx

    def stages(self, run_dir: Path) -> list[Stage]:
        """The training stages of this run, in order (none when it only evaluates); the preflight reads them."""
        return layout(run_dir, self.plan, self.trainer)

    def _stage(self, ctx: RunContext, name: str, fn: Callable[..., tuple[Any, dict]], *args: Any) -> Any:
        """Run one stage between ``on_stage_start`` and ``on_stage_end``: ``fn`` returns its value and what
        observers are shown of it; returns the value."""
        ctx.emit("on_stage_start", stage=name)
        value, output = fn(*args)
        ctx.results.run.stages_done.append(name)
        ctx.write_results()  # after every stage: a kill loses at most the work since the last checkpoint
        ctx.emit("on_stage_end", stage=name, output=output)
        return value

    def setup(self, ctx: RunContext) -> tuple[None, dict]:
        """Seed everything, and write ``config.yaml``: every setting the run uses."""
        from transformers import set_seed

        set_seed(ctx.seed)
        path = ctx.run_dir / "config.yaml"
        ctx.write(path, OmegaConf.to_yaml(OmegaConf.create(self.config)))
        ctx.results.artifacts["config"] = str(path)
        return None, {"seed": ctx.seed}

    def load_data(self, ctx: RunContext) -> tuple[DataSplits, dict]:
        """The training and held-out rows, in the prompt format."""
        splits = self.data.load(self.prompts)
        ctx.results.data = splits.stats
        return splits, splits.stats

    def load_model(self, ctx: RunContext) -> tuple[tuple[Any, Any], dict]:
        """The policy and its tokenizer."""
        model, tokenizer = self.model.load()
        trainable, total = count_parameters(model)
        ctx.results.model = {"trainable_parameters": trainable, "total_parameters": total}
        return (model, tokenizer), ctx.results.model

    def build_scorer(self, ctx: RunContext) -> tuple[Scorer, dict]:
        """The one notion of "correct" (the prompt's answer format and the data's verifier), which rewards and
        evaluation share."""
        scorer = Scorer(self.prompts.answer_format, self.data.verifier)
        if self.reward is None:
            return scorer, {"verifier": type(self.data.verifier).__name__}
        return scorer, {"functions": ", ".join(f"{n}x{w:g}" for n, w in self.reward.weights.items())}

    def filter_prompts(self, ctx: RunContext, model: Any, tokenizer: Any, splits: DataSplits, scorer: Scorer
                       ) -> tuple[DataSplits, dict]:
        """Drop the training prompts the base model always or never solves (``data.difficulty_filter``); the pass
        rates go to ``pass_rates.jsonl``, read back by a resumed run."""
        train, stats = splits.pass_rate_filter.apply(model, tokenizer, splits.train, scorer,
                                                     ctx.run_dir / "pass_rates.jsonl", seed=ctx.seed, write=ctx.main)
        ctx.results.pass_rate_filter = stats
        return dataclasses.replace(splits, train=train), stats

    def evaluate(self, ctx: RunContext, name: str, model: Any, tokenizer: Any, splits: DataSplits, scorer: Scorer,
                 step: int | None = None, stage_dir: Path | None = None) -> tuple[EvalResult, dict]:
        """Evaluate ``model`` on the held-out rows as ``name``, and record it (its samples in ``stage_dir``, or
        in the run directory)."""
        result = self.evaluator.evaluate(model, tokenizer, splits.test, scorer, name, step=step)
        ctx.record_evaluation(result, stage_dir)
        return result, {"accuracy": result.accuracy, "n": result.n}

    def run_stages(self, ctx: RunContext, stages: list[Stage], model: Any, tokenizer: Any, splits: DataSplits,
                   scorer: Scorer, checkpoint: Path | None) -> tuple[Any, dict[str, Any] | None]:
        """Train every stage in turn, each judged by the gate against the evaluation kept before it; returns the
        model the run ends with (and its full weights when training sharded them). Stages a resumed run finished
        before are not trained again: the weights of the last one kept are loaded."""
        kept = (ctx.results.baseline, samples_path(ctx.run_dir, "baseline"))  # an evaluation and its samples
        ctx.results.stages, pending, gathered = [], None, None
        for i, stage in enumerate(stages):
            record = stage.record()  # finished before this run was resumed
            if record is None:
                if pending is not None:
                    load_weights(model, pending)
                    pending = None
                model, gathered, record = self.train_stage(ctx, stage, model, tokenizer, splits, scorer, checkpoint,
                                                           kept[0])
                checkpoint = None
            else:
                ctx.results.stages.append(record)
                pending = stage.weights if record.kept else pending
            if record.kept:
                kept = (record.evaluation, stage.samples)
            if record.stopped_pipeline:
                ctx.results.stages += [later.skipped() for later in stages[i + 1:]]
                break
        if pending is not None:
            load_weights(model, pending)
        self._keep_final(ctx, *kept)
        return model, gathered

    def train_stage(self, ctx: RunContext, stage: Stage, model: Any, tokenizer: Any, splits: DataSplits,
                    scorer: Scorer, checkpoint: Path | None, before: Evaluation | None
                    ) -> tuple[Any, dict[str, Any] | None, StageRecord]:
        """Train one stage, evaluate it, and let the gate judge it against ``before``: a refused stage's model is
        rolled back. Returns the model, its gathered weights (sharded training) and the stage's record."""
        gate, (train_event, eval_event) = self.plan.gate, stage.events
        saved = trainable_state(model) if gate.enabled else None
        trained, summary = self._stage(ctx, train_event, self.train, ctx, stage, model, tokenizer, splits, scorer,
                                       checkpoint)
        step = stage.offset + trained.global_step
        if trained.stopped_by:
            raise Stopped(trained.stopped_by, step, str(stage.dir))
        model, gathered = trained.model, trained.state_dict
        result = self._stage(ctx, eval_event, self.evaluate, ctx, stage.evaluation, model, tokenizer, splits, scorer,
                             step, stage.dir)
        verdict = gate.judge(before, result.summary())
        if not verdict["passed"]:
            restore(model, saved)
            gathered = full_state_dict(model)  # sharded: the weights to save are the restored ones
            if stage.evaluation == "final" and ctx.main:  # samples_final.jsonl: the kept model's (rank 0 wrote it)
                stage.samples.replace(samples_path(stage.dir, "rolled_back"))
            log.warning("[rlvr] gate: stage %s rolled back (%s); %s.", stage.label, verdict["reason"],
                        "the pipeline stops" if gate.on_regression == "stop" else "the run continues from the "
                        "model before it")
        record = StageRecord(stage.index, stage.name, str(stage.dir), stage.offset, summary, trained.history,
                             result.summary(), verdict, kept=verdict["passed"],
                             stopped_pipeline=not verdict["passed"] and gate.on_regression == "stop")
        ctx.results.stages.append(record)
        stage.finish(record, model)  # every rank: sharded weights are gathered; rank 0 writes
        distributed.barrier()
        ctx.write_results()
        return model, gathered, record

    def _keep_final(self, ctx: RunContext, evaluation: Evaluation | None, samples: Path) -> None:
        """``final`` is the evaluation of the model the run ends with: the last stage the gate kept, or the
        baseline when none was; its samples are copied to ``samples_final.jsonl``."""
        if evaluation is not None and evaluation["name"] == "final":  # a plain run's kept stage: already there
            return
        if evaluation is None:  # no baseline and no stage kept: the model was never evaluated
            ctx.results.final = None
            return
        ctx.results.final = {**evaluation, "name": "final", "from": evaluation["name"]}
        if samples.is_file():
            ctx.write(samples_path(ctx.run_dir, "final"), samples.read_text())
        ctx.write_results()

    def train(self, ctx: RunContext, stage: Stage, model: Any, tokenizer: Any, splits: DataSplits, scorer: Scorer,
              checkpoint: Path | None = None) -> tuple[tuple[TrainResult, TrainSummary], dict]:
        """Run the stage's training loop from ``model`` (continuing from ``checkpoint``), its metrics and
        evaluations every ``eval.eval_steps`` told to observers."""
        resumed_from_step = checkpoint_step(checkpoint) if checkpoint else None  # read now: rotation may delete it
        events = _Events(self, ctx, stage, tokenizer, splits, scorer)
        if splits.feed is not None and not isinstance(stage.loop, TakesFeed):
            raise ConfigError(f"data.curriculum and data.difficulty_filter.flat_epochs choose rows for loops that "
                              f"sample groups (train=grpo, rloo); {stage.name} is {type(stage.loop).__name__}.")
        result = stage.loop.train(TrainInputs(
            model=model, tokenizer=tokenizer, train=splits.train, scorer=scorer,
            rewards=self.reward.trl_functions(scorer), output_dir=str(stage.checkpoints),
            seed=stage.seed(ctx.seed),
            events=events, resume_from=str(checkpoint) if checkpoint else None, feed=splits.feed,
        ))
        if splits.feed is not None:  # levels reached and their moves, prompts skipped
            for key, value in splits.feed.summary().items():
                setattr(ctx.results, key, value)
        summary = TrainSummary(result.global_step, round(result.runtime_s, 1), resumed_from_step)
        if not stage.staged:  # a plain run keeps its training where it always was
            ctx.results.train, ctx.results.train_history = summary, result.history
        return (result, summary), asdict(summary)

    def save(self, ctx: RunContext, model: Any, tokenizer: Any, state_dict: dict[str, Any] | None = None
             ) -> tuple[str, dict]:
        """Write the model the run ends with (or its LoRA adapter) to ``model/``."""
        path = str(ctx.run_dir / "model")
        if ctx.main:
            self.model.save(model, tokenizer, path, state_dict=state_dict)
        ctx.results.artifacts["model"] = path
        return path, {"model": path}

    def teardown(self, ctx: RunContext, status: str, error: BaseException | None) -> None:
        """Always runs: stop the reward worker processes, write whatever results exist with how the run ended,
        even after a failure (nothing is lost), and tell observers."""
        ctx.results.run.status = status
        if error is not None:
            ctx.results.run.error = f"{type(error).__name__}: {str(error).strip()[:500]}"
        if self.reward is not None:
            self.reward.close()
        try:
            ctx.results.artifacts["results"] = str(ctx.write_results())
        except OSError as e:  # the disk may be why we failed; do not mask the original error
            log.warning("Could not write results.json: %s", e)
        ctx.emit("on_pipeline_end", status=status, error=error, results=ctx.results.to_json())


class _Events:
    """A training loop's events, as observer events with the run's global step (the stage's offset added);
    evaluates every ``eval.eval_steps`` optimizer steps of the stage."""

    def __init__(self, pipeline: PipelineOrchestrator, ctx: RunContext, stage: Stage, tokenizer: Any,
                 splits: DataSplits, scorer: Scorer):
        self.pipeline, self.ctx, self.stage, self.tokenizer, self.splits, self.scorer = (
            pipeline, ctx, stage, tokenizer, splits, scorer)
        self.total_steps = sum(s.loop.max_steps for s in layout(ctx.run_dir, pipeline.plan, pipeline.trainer))

    def log(self, step: int, metrics: dict[str, float], warnings: list[str]) -> None:
        self.ctx.emit("on_train_log", step=self.stage.offset + step, max_steps=self.total_steps, metrics=metrics,
                      warnings=warnings, stage=self.stage.name)

    def step_end(self, step: int, model: Any) -> None:
        every = self.pipeline.evaluator.eval_steps
        if every and step % every == 0 and step < self.stage.loop.max_steps:
            at = self.stage.offset + step
            self.pipeline.evaluate(self.ctx, f"step_{at}", model, self.tokenizer, self.splits, self.scorer, at)
