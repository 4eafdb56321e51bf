"""The pipeline: one component per config group, driven through a fixed lifecycle

    setup -> data -> model -> rewards -> baseline_eval -> train -> final_eval -> save   (teardown always)

with observers told about every stage. With ``pipeline.stages`` (:mod:`rlvr.orchestration.stages`) the training
part repeats per stage, each judged by the regression gate: ``train:<name> -> eval:<name>`` for every stage,
then ``save``. Each stage is a short method that gets what it needs as arguments
(the run context and earlier stages' outputs), delegates to a component and returns its output; the
orchestrator holds no algorithm and parses no strings.

    pipeline = build_pipeline(cfg)     # validate every _target_ node, then construct (nothing loads yet)
    pipeline.run(run_dir)
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from rlvr import distributed
from rlvr.config import build, secrets, validate, with_defaults
from rlvr.errors import ConfigError, Stopped
from rlvr.evaluation import RegressionGate
from rlvr.interfaces import (
    DataComponent,
    DataSplits,
    EvalResult,
    EvaluationComponent,
    ModelComponent,
    PromptComponent,
    RewardComponent,
    TrainingLoop,
    TrainInputs,
    TrainResult,
    observer_problem,
)
from rlvr.model import count_parameters, load_weights, restore, save_weights, trainable_state
from rlvr.observers import Observers
from rlvr.orchestration.context import RunContext
from rlvr.orchestration.stages import Stage, StagePlan, layout
from rlvr.scoring import Scorer
from rlvr.train.checkpoints import (
    STATE_FILE,
    checkpoint_commit,
    checkpoint_step,
    code_commit,
    latest_checkpoint,
)

log = logging.getLogger(__name__)


def build_pipeline(cfg: DictConfig) -> "PipelineOrchestrator":
    """Check the whole config (every ``_target_`` node against its signature), then build the pipeline and its
    components. Cheap: no model or dataset is loaded, so a mistake fails in seconds with a ConfigError."""
    cfg = with_defaults(cfg)
    validate(cfg)
    pipeline = build(cfg)
    if not isinstance(pipeline, PipelineOrchestrator):
        raise ConfigError(f"The config's root _target_ must be rlvr.orchestration.PipelineOrchestrator, got "
                          f"{type(pipeline).__name__}.")
    config = OmegaConf.to_container(cfg, resolve=True)
    secrets.warn_if_any(config)
    pipeline.config, pipeline.secrets = secrets.redact(config), secrets.known_values(config)
    return pipeline


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
    ):
        if resume not in (None, "auto") and not (Path(resume) / STATE_FILE).is_file():
            raise ConfigError(f"resume={resume}: not a complete checkpoint (it has no {STATE_FILE}); use "
                              "resume=auto or a checkpoint-N directory of a run.")
        self.plan = _plan(pipeline)
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
        unmeasured = sorted(self.plan.gate.watched - eval.measures()) if self.plan.gate.enabled else []
        if unmeasured and (train is not None or self.plan.stages):
            raise ConfigError(f"pipeline.gate watches {unmeasured[0]}, which eval ({type(eval).__name__}) does not "
                              "measure: ref_perplexity needs eval.validator.reference, nli_* eval.validator.nli, "
                              "self_consistency eval.k >= 2 (eval=validated sets all but nli).")
        self.data, self.prompts, self.model, self.reward = data, prompts, model, reward
        self.trainer, self.evaluator = train, eval
        self.observers = dict(observers or {})
        self.seed, self.output_dir, self.save_model, self.resume = seed, output_dir, save_model, resume
        self.resume_other_commit = resume_other_commit
        self.config: dict[str, Any] = {}  # as written to config.yaml and given to observers: secrets redacted
        self.secrets: list[str] = secrets.known_values()  # strings scrubbed from every file the run writes

    # --- lifecycle -------------------------------------------------------------------------------------------
    def run(self, run_dir: str | Path | None = None, overrides: list[str] | None = None,
            command: str | None = None) -> dict[str, Any]:
        """Run every stage; returns what ``results.json`` holds. An exception reaches observers as a failed
        end, after ``results.json`` is written with whatever was measured."""
        run_dir = Path(run_dir or self.output_dir or "outputs/run")
        ctx = RunContext(run_dir, self.seed, Observers(list(self.observers.values())), main=distributed.is_main(),
                         secrets=self.secrets)
        stages = self.stages(run_dir)
        checkpoint, previous, resume_step = self._resume_point(run_dir, stages)
        distributed.barrier()  # every rank has read the run directory before the main one writes to it
        if previous.get("run", {}).get("status") == "success":
            log.info("[rlvr] %s holds a finished run: nothing to resume.", run_dir)
            return previous
        ctx.results.update({k: v for k, v in previous.items() if k in ("baseline", "data", "model", "artifacts")})
        ctx.results["during_training"] = [e for e in previous.get("during_training", [])
                                          if resume_step is not None and (e.get("step") or 0) <= resume_step]
        hide = lambda text: secrets.scrub(text, self.secrets)  # noqa: E731 - a key typed on the command line
        ctx.results["run"] = {"command": hide(command) if command else command,
                              "overrides": [hide(o) for o in overrides or []], "run_dir": str(run_dir),
                              "resumed_from": str(checkpoint) if checkpoint else None,
                              "world_size": distributed.world_size(),
                              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        run_dir.mkdir(parents=True, exist_ok=True)
        if ctx.main:  # Hydra wrote the command line and the config as given before we ran
            secrets.scrub_files([*run_dir.glob(".hydra/*.yaml"), *run_dir.parent.glob("multirun.yaml")], self.secrets)
        ctx.emit("on_pipeline_start", config=self.config, run_dir=str(run_dir), resume_step=resume_step)
        status, error = "failed", None
        try:
            self._stage(ctx, "setup", self.setup, ctx)
            splits = self._stage(ctx, "data", self.load_data, ctx)
            model, tokenizer = self._stage(ctx, "model", self.load_model, ctx)
            scorer = self._stage(ctx, "rewards", self.build_scorer, ctx)
            if not stages:  # evaluation only
                self._stage(ctx, "eval", self.evaluate, ctx, "eval", model, tokenizer, splits, scorer)
                status = "success"
                return ctx.results
            if self.evaluator.baseline and "baseline" not in ctx.results:
                self._stage(ctx, "baseline_eval", self.evaluate, ctx, "baseline", model, tokenizer, splits, scorer)
            model, gathered = self.run_stages(ctx, stages, model, tokenizer, splits, scorer, checkpoint)
            if self.save_model:
                self._stage(ctx, "save", self.save, ctx, model, tokenizer, gathered)
            status = "success"
        except BaseException as e:
            if isinstance(e, Stopped):
                status = "stopped"
                ctx.results["run"]["stopped"] = str(e)
            error = None if isinstance(e, Stopped) else e
            raise
        finally:
            ctx.results["run"]["status"] = status
            if error is not None:
                ctx.results["run"]["error"] = f"{type(error).__name__}: {str(error).strip()[:500]}"
            self.teardown(ctx)
            ctx.emit("on_pipeline_end", status=status, error=error, results=ctx.results)
        return ctx.results

    def stages(self, run_dir: Path) -> list[Stage]:
        """The training stages of this run (none when it only evaluates)."""
        if self.plan.stages:
            return layout(run_dir, self.plan.stages, one_stage=False)
        return layout(run_dir, {"train": self.trainer}, one_stage=True) if self.trainer is not None else []

    def _resume_point(self, run_dir: Path, stages: list[Stage]) -> tuple[Path | None, dict[str, Any], int | None]:
        """The checkpoint to continue from (in the first unfinished stage), the results recorded so far and the
        global step metrics are cut back to (None: a fresh run, whose metrics file starts empty)."""
        path = run_dir / "results.json"
        if not self.resume:
            if path.is_file():
                raise ConfigError(f"{run_dir} already holds a run and resume=null: use resume=auto to continue it, "
                                  "or another output_dir.")
            return None, {}, None
        previous = json.loads(path.read_text()) if path.is_file() else {}
        current = next((s for s in stages if not s.staged or s.record() is None), None)
        checkpoint = None
        if current is not None:
            checkpoint = latest_checkpoint(current.checkpoints) if self.resume == "auto" else Path(self.resume)
        started = bool(previous) or any(s.record() for s in stages)
        if started or checkpoint is not None:
            self._check_same_job(run_dir)
        if checkpoint is not None:
            self._check_same_code(checkpoint)
            log.info("[rlvr] resuming %s from %s", run_dir, checkpoint.relative_to(run_dir)
                     if checkpoint.is_relative_to(run_dir) else checkpoint)
            return checkpoint, previous, current.offset + checkpoint_step(checkpoint)
        if current is not None and started:
            log.warning("[rlvr] %s holds a run without a complete checkpoint of its current stage: %s starts again "
                        "from its first step.", run_dir, "training" if not current.staged else f"stage {current.label}")
        if not started:
            return None, previous, None
        return None, previous, current.offset if current is not None else sum(s.loop.max_steps for s in stages)

    def _check_same_job(self, run_dir: Path) -> None:
        """A run continues only with the settings it started with (its config.yaml): a changed setting would
        mix two jobs in one directory."""
        saved = run_dir / "config.yaml"
        if not saved.is_file() or not self.config:
            return
        before, now = OmegaConf.to_container(OmegaConf.load(saved), resolve=True), dict(self.config)
        for key in ("resume", "resume_other_commit", "output_dir", "observers"):
            before.pop(key, None)
            now.pop(key, None)
        changed = _first_difference(before, now)
        if changed:
            raise ConfigError(f"{run_dir} holds a run with other settings ({changed}); it can only be continued "
                              "with the same ones: use another output_dir for a new run.")

    def _check_same_code(self, checkpoint: Path) -> None:
        """A checkpoint is continued by the commit of the code that wrote it, unless ``resume_other_commit``."""
        written, running = checkpoint_commit(checkpoint), code_commit()
        if written and running and written != running and not self.resume_other_commit:
            raise ConfigError(f"{checkpoint} was written by commit {written[:12]}, and this code is commit "
                              f"{running[:12]}: resume with the code that wrote it (git checkout {written[:12]}), "
                              "or set resume_other_commit=true to continue with this code.")
        if written != running:
            log.warning("[rlvr] %s was written by commit %s; this code is commit %s.", checkpoint.name,
                        (written or "unknown")[:12], (running or "unknown")[:12])

    def _stage(self, ctx: RunContext, name: str, fn: Callable[..., tuple[Any, dict]], *args: Any) -> Any:
        """Run one stage between ``on_stage_start`` and ``on_stage_end``; returns its value."""
        ctx.emit("on_stage_start", stage=name)
        value, output = fn(*args)
        ctx.results["run"].setdefault("stages_done", []).append(name)
        ctx.write_results()  # after every stage: a kill loses at most the work since the last checkpoint
        ctx.emit("on_stage_end", stage=name, output=output)
        return value

    def setup(self, ctx: RunContext) -> tuple[None, dict]:
        from transformers import set_seed

        set_seed(ctx.seed)
        path = ctx.run_dir / "config.yaml"
        ctx.write(path, OmegaConf.to_yaml(OmegaConf.create(self.config)))
        ctx.results["artifacts"]["config"] = str(path)
        return None, {"seed": ctx.seed}

    def load_data(self, ctx: RunContext) -> tuple[DataSplits, dict]:
        splits = self.data.load(self.prompts)
        ctx.results["data"] = splits.stats
        return splits, splits.stats

    def load_model(self, ctx: RunContext) -> tuple[tuple[Any, Any], dict]:
        model, tokenizer = self.model.load()
        trainable, total = count_parameters(model)
        ctx.results["model"] = {"trainable_parameters": trainable, "total_parameters": total}
        return (model, tokenizer), ctx.results["model"]

    def build_scorer(self, ctx: RunContext) -> tuple[Scorer, dict]:
        scorer = Scorer(self.prompts.answer_format, self.data.verifier)
        if self.reward is None:
            return scorer, {"verifier": type(self.data.verifier).__name__}
        return scorer, {"functions": ", ".join(f"{n}x{w:g}" for n, w in self.reward.weights.items())}

    def evaluate(self, ctx: RunContext, name: str, model: Any, tokenizer: Any, splits: DataSplits, scorer: Scorer,
                 step: int | None = None, stage_dir: Path | None = None) -> tuple[EvalResult, dict]:
        result = self.evaluator.evaluate(model, tokenizer, splits.test, scorer, name, step=step)
        ctx.record_evaluation(result, stage_dir)
        return result, {"accuracy": result.accuracy, "n": result.n}

    def run_stages(self, ctx: RunContext, stages: list[Stage], model: Any, tokenizer: Any, splits: DataSplits,
                   scorer: Scorer, checkpoint: Path | None) -> tuple[Any, dict[str, Any] | None]:
        """Train every stage in turn, each judged by the gate against the evaluation before it; returns the model
        the run ends with (and its full weights when training sharded them). Stages a resumed run finished before
        are not trained again: their weights are loaded."""
        one = not stages[0].staged
        gate = self.plan.gate
        if distributed.sharded_launch() and (not one or gate.enabled):
            raise ConfigError("pipeline.stages and pipeline.gate hand whole weights from stage to stage; with FSDP or "
                              "DeepSpeed ZeRO-3 run one stage without a gate (or launch with DDP or ZeRO-2).")
        kept = (ctx.results.get("baseline"), ctx.run_dir / "samples_baseline.jsonl")  # evaluation, its samples
        ctx.results["stages"], pending, gathered = [], None, None
        for i, stage in enumerate(stages):
            record = None if one else stage.record()
            if record is not None:  # finished before this run was resumed
                ctx.results["stages"].append(record)
                if record["kept"]:
                    pending, kept = stage.weights, (record["evaluation"], stage.dir / f"samples_{stage.name}.jsonl")
                if record["stopped_pipeline"]:
                    self._skip(ctx, stages[i + 1:])
                    break
                continue
            if pending is not None:
                load_weights(model, pending)
                pending = None
            before = trainable_state(model) if gate.enabled else None
            names = ("train", "final_eval", "final") if one else (f"train:{stage.name}", f"eval:{stage.name}",
                                                                 stage.name)
            trained, summary = self._stage(ctx, names[0], self.train, ctx, stage, model, tokenizer, splits, scorer,
                                           checkpoint)
            checkpoint = None
            step = stage.offset + trained.global_step
            if trained.stopped_by:
                raise Stopped(trained.stopped_by, step, str(stage.dir))
            model, gathered = trained.model, trained.state_dict
            result = self._stage(ctx, names[1], self.evaluate, ctx, names[2], model, tokenizer, splits, scorer, step,
                                 None if one else stage.dir)
            evaluation = result.summary()
            verdict = gate.judge(kept[0], evaluation)
            samples = (ctx.run_dir if one else stage.dir) / f"samples_{names[2]}.jsonl"
            if verdict["passed"]:
                kept = (evaluation, samples)
                if not one and ctx.main:
                    save_weights(model, stage.weights)
            else:
                restore(model, before)
                if one:  # samples_final.jsonl will hold the kept model's samples
                    samples.replace(samples.with_name("samples_rolled_back.jsonl"))
                log.warning("[rlvr] gate: stage %s rolled back (%s); %s.", stage.label, verdict["reason"],
                            "the pipeline stops" if gate.on_regression == "stop" else "the run continues from the "
                            "model before it")
            stop = not verdict["passed"] and gate.on_regression == "stop"
            record = {"index": stage.index, "name": stage.name, "dir": str(stage.dir), "step_offset": stage.offset,
                      "train": summary, "history": trained.history, "evaluation": evaluation,
                      "gate": verdict, "kept": verdict["passed"], "stopped_pipeline": stop}
            ctx.results["stages"].append(record)
            if not one and ctx.main:
                stage.mark_done(record)  # last: the stage counts as finished once its marker exists
            distributed.barrier()
            ctx.write_results()
            if stop:
                self._skip(ctx, stages[i + 1:])
                break
        if pending is not None:
            load_weights(model, pending)
        if not one or not ctx.results["stages"][-1]["kept"]:
            self._keep_final(ctx, *kept)
        return model, gathered

    def _skip(self, ctx: RunContext, stages: list[Stage]) -> None:
        for stage in stages:
            ctx.results["stages"].append({"index": stage.index, "name": stage.name, "dir": str(stage.dir),
                                          "skipped": "the gate stopped the pipeline before it"})

    def _keep_final(self, ctx: RunContext, evaluation: dict[str, Any] | None, samples: Path) -> None:
        """``final`` is the evaluation of the model the run ends with: the last stage the gate kept, or the
        baseline when none was; its samples are copied to ``samples_final.jsonl``."""
        if evaluation is None:  # no baseline and no stage kept: the model was never evaluated
            ctx.results.pop("final", None)
            return
        ctx.results["final"] = {**evaluation, "name": "final", "from": evaluation["name"]}
        if samples.is_file():
            ctx.write(ctx.run_dir / "samples_final.jsonl", samples.read_text())
        ctx.write_results()

    def train(self, ctx: RunContext, stage: Stage, model: Any, tokenizer: Any, splits: DataSplits, scorer: Scorer,
              checkpoint: Path | None = None) -> tuple[tuple[TrainResult, dict], dict]:
        resumed_from_step = checkpoint_step(checkpoint) if checkpoint else None  # read now: rotation may delete it
        events = _Events(self, ctx, stage, tokenizer, splits, scorer)
        result = stage.loop.train(TrainInputs(
            model=model, tokenizer=tokenizer, train=splits.train, scorer=scorer,
            rewards=self.reward.trl_functions(scorer), output_dir=str(stage.checkpoints),
            seed=stage.seed(ctx.seed), events=events,
            resume_from=str(checkpoint) if checkpoint else None,
        ))
        summary = {"global_step": result.global_step, "runtime_s": round(result.runtime_s, 1),
                   "resumed_from_step": resumed_from_step}
        if not stage.staged:  # a one-stage run keeps its training where it always was
            ctx.results["train"], ctx.results["train_history"] = summary, result.history
        return (result, summary), summary

    def save(self, ctx: RunContext, model: Any, tokenizer: Any, state_dict: dict[str, Any] | None = None
             ) -> tuple[str, dict]:
        path = str(ctx.run_dir / "model")
        if ctx.main:
            self.model.save(model, tokenizer, path, state_dict=state_dict)
        ctx.results["artifacts"]["model"] = path
        return path, {"model": path}

    def teardown(self, ctx: RunContext) -> None:
        """Always runs: stop the reward worker processes, and write whatever results exist, even after a failure
        (nothing is lost)."""
        if self.reward is not None:
            self.reward.close()
        try:
            ctx.results["artifacts"]["results"] = str(ctx.write_results())
        except OSError as e:  # the disk may be why we failed; do not mask the original error
            log.warning("Could not write results.json: %s", e)


class _Events:
    """A training loop's events, as observer events with the run's global step (the stage's offset added);
    evaluates every ``eval.eval_steps`` optimizer steps of the stage."""

    def __init__(self, pipeline: PipelineOrchestrator, ctx: RunContext, stage: Stage, tokenizer: Any,
                 splits: DataSplits, scorer: Scorer):
        self.pipeline, self.ctx, self.stage, self.tokenizer, self.splits, self.scorer = (
            pipeline, ctx, stage, tokenizer, splits, scorer)
        self.total_steps = sum(s.loop.max_steps for s in pipeline.stages(ctx.run_dir))

    def log(self, step: int, metrics: dict[str, float], warnings: list[str]) -> None:
        self.ctx.emit("on_train_log", step=self.stage.offset + step, max_steps=self.total_steps, metrics=metrics,
                      warnings=warnings, stage=self.stage.name)

    def step_end(self, step: int, model: Any) -> None:
        every = self.pipeline.evaluator.eval_steps
        if every and step % every == 0 and step < self.stage.loop.max_steps:
            at = self.stage.offset + step
            self.pipeline.evaluate(self.ctx, f"step_{at}", model, self.tokenizer, self.splits, self.scorer, at)


def _plan(pipeline: StagePlan | dict[str, Any]) -> StagePlan:
    """The stage plan from its config (a mapping once built by Hydra), with stage names that can name files."""
    if isinstance(pipeline, dict):
        gate = pipeline.get("gate") or {}
        pipeline = StagePlan(stages=dict(pipeline.get("stages") or {}),
                             gate=gate if isinstance(gate, RegressionGate) else RegressionGate(**gate))
    for name in pipeline.stages:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or name in ("baseline", "final", "eval"):
            raise ConfigError(f"pipeline.stages.{name}: a stage name is letters, digits, _ and - (it names a "
                              "directory and an evaluation), and not baseline, final or eval.")
    return pipeline


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """``key: old -> new`` for the first setting that differs between two plain configs, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(dict.fromkeys([*a, *b])):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} -> {b!r}"
