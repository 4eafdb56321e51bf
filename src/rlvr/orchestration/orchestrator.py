"""The pipeline: one component per config group, driven through a fixed lifecycle

    setup -> data -> model -> rewards -> baseline_eval -> train -> final_eval -> save   (teardown always)

with observers told about every stage. Each stage is a short method that gets what it needs as arguments
(the run context and earlier stages' outputs), delegates to a component and returns its output; the
orchestrator holds no algorithm and parses no strings.

    pipeline = build_pipeline(cfg)     # validate every _target_ node, then construct (nothing loads yet)
    pipeline.run(run_dir)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from rlvr.config import build, validate, with_defaults
from rlvr.data import PromptTemplate
from rlvr.errors import ConfigError, Stopped
from rlvr.interfaces import (
    DataComponent,
    DataSplits,
    EvalResult,
    EvaluationComponent,
    ModelComponent,
    TrainingLoop,
    TrainInputs,
    TrainResult,
)
from rlvr.model import count_parameters
from rlvr.observers import Observers
from rlvr.orchestration.context import RunContext
from rlvr.rewards import RewardSuite
from rlvr.scoring import Scorer
from rlvr.train.checkpoints import STATE_FILE, checkpoint_step, latest_checkpoint

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
    pipeline.config = OmegaConf.to_container(cfg, resolve=True)
    return pipeline


class PipelineOrchestrator:
    """Runs one RLVR job and writes everything into a run directory.

    Args:
        data, prompts, model, eval: the components (one option of each config group).
        reward, train: the reward functions and the training loop; both null evaluates the model only
            (``setup -> data -> model -> rewards -> eval``; the benchmark's pipeline).
        observers: ``{name: observer}``; each gets the events it defines (see :mod:`rlvr.observers.base`).
        seed: seed for sampling, initialisation and data order.
        output_dir: the run directory; null lets the entry point choose (Hydra's ``outputs/<date>/<time>``).
        save_model: save the trained model (full weights, or only the adapter with LoRA) to ``model/``.
        resume: ``auto`` (the default) continues a run found in the run directory from its latest complete
            checkpoint: finished stages are skipped, seen data is not replayed, metrics are cut back to the
            checkpoint's step. So rerunning a killed command with the same ``output_dir`` picks up where it
            stopped; a new directory simply starts. A path names a checkpoint. null refuses a directory that
            already holds a run.
    """

    def __init__(
        self,
        data: DataComponent,
        prompts: PromptTemplate,
        model: ModelComponent,
        eval: EvaluationComponent,
        reward: RewardSuite | None = None,
        train: TrainingLoop | None = None,
        observers: dict[str, Any] | None = None,
        seed: int = 0,
        output_dir: str | None = None,
        save_model: bool = True,
        resume: str | None = "auto",
    ):
        if resume not in (None, "auto") and not (Path(resume) / STATE_FILE).is_file():
            raise ConfigError(f"resume={resume}: not a complete checkpoint (it has no {STATE_FILE}); use "
                              "resume=auto or a checkpoint-N directory of a run.")
        if (reward is None) != (train is None):
            raise ConfigError("reward and train go together: set both (training) or neither (evaluation only).")
        for key, value, protocol in (("data", data, DataComponent), ("model", model, ModelComponent),
                                     ("train", train, TrainingLoop), ("eval", eval, EvaluationComponent)):
            if value is not None and not isinstance(value, protocol):
                raise ConfigError(f"{key}: {type(value).__name__} does not implement {protocol.__name__} "
                                  f"(see rlvr.interfaces).")
        self.data, self.prompts, self.model, self.reward = data, prompts, model, reward
        self.trainer, self.evaluator = train, eval
        self.observers = dict(observers or {})
        self.seed, self.output_dir, self.save_model, self.resume = seed, output_dir, save_model, resume
        self.config: dict[str, Any] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------
    def run(self, run_dir: str | Path | None = None, overrides: list[str] | None = None,
            command: str | None = None) -> dict[str, Any]:
        """Run every stage; returns what ``results.json`` holds. An exception reaches observers as a failed
        end, after ``results.json`` is written with whatever was measured."""
        run_dir = Path(run_dir or self.output_dir or "outputs/run")
        ctx = RunContext(run_dir, self.seed, Observers(list(self.observers.values())))
        checkpoint, previous, resume_step = self._resume_point(run_dir)
        if previous.get("run", {}).get("status") == "success":
            log.info("[rlvr] %s holds a finished run: nothing to resume.", run_dir)
            return previous
        ctx.results.update({k: v for k, v in previous.items() if k in ("baseline", "data", "model", "artifacts")})
        ctx.results["run"] = {"command": command, "overrides": list(overrides or []), "run_dir": str(run_dir),
                              "resumed_from": str(checkpoint) if checkpoint else None}
        run_dir.mkdir(parents=True, exist_ok=True)
        ctx.emit("on_pipeline_start", config=self.config, run_dir=str(run_dir), resume_step=resume_step)
        status, error = "failed", None
        try:
            self._stage(ctx, "setup", self.setup, ctx)
            splits = self._stage(ctx, "data", self.load_data, ctx)
            model, tokenizer = self._stage(ctx, "model", self.load_model, ctx)
            scorer = self._stage(ctx, "rewards", self.build_scorer, ctx)
            if self.trainer is None:  # evaluation only
                self._stage(ctx, "eval", self.evaluate, ctx, "eval", model, tokenizer, splits, scorer)
                status = "success"
                return ctx.results
            if self.evaluator.baseline and "baseline" not in ctx.results:
                self._stage(ctx, "baseline_eval", self.evaluate, ctx, "baseline", model, tokenizer, splits, scorer)
            trained = self._stage(ctx, "train", self.train, ctx, model, tokenizer, splits, scorer, checkpoint)
            if trained.stopped_by:
                status = "stopped"
                raise Stopped(trained.stopped_by, trained.global_step, str(run_dir))
            self._stage(ctx, "final_eval", self.evaluate, ctx, "final", trained.model, tokenizer, splits, scorer,
                        trained.global_step)
            if self.save_model:
                self._stage(ctx, "save", self.save, ctx, trained.model, tokenizer)
            status = "success"
        except BaseException as e:
            error = None if isinstance(e, Stopped) else e
            raise
        finally:
            ctx.results["run"]["status"] = status
            if error is not None:
                ctx.results["run"]["error"] = f"{type(error).__name__}: {str(error).strip()[:500]}"
            self.teardown(ctx)
            ctx.emit("on_pipeline_end", status=status, error=error, results=ctx.results)
        return ctx.results

    def _resume_point(self, run_dir: Path) -> tuple[Path | None, dict[str, Any], int | None]:
        """The checkpoint to continue from, the results recorded so far and the step metrics are cut back to
        (None: a fresh run, whose metrics file starts empty)."""
        path = run_dir / "results.json"
        if not self.resume:
            if path.is_file():
                raise ConfigError(f"{run_dir} already holds a run and resume=null: use resume=auto to continue it, "
                                  "or another output_dir.")
            return None, {}, None
        checkpoint = latest_checkpoint(run_dir / "checkpoints") if self.resume == "auto" else Path(self.resume)
        previous = json.loads(path.read_text()) if path.is_file() else {}
        if previous or checkpoint is not None:
            self._check_same_job(run_dir)
        if checkpoint is not None:
            log.info("[rlvr] resuming %s from %s", run_dir, checkpoint.name)
        elif previous and self.trainer is not None:
            log.warning("[rlvr] %s holds a run without a complete checkpoint: training starts again from step 0.",
                        run_dir)
        return checkpoint, previous, checkpoint_step(checkpoint) if checkpoint else 0

    def _check_same_job(self, run_dir: Path) -> None:
        """A run continues only with the settings it started with (its config.yaml): a changed setting would
        mix two jobs in one directory."""
        saved = run_dir / "config.yaml"
        if not saved.is_file() or not self.config:
            return
        before, now = OmegaConf.to_container(OmegaConf.load(saved), resolve=True), dict(self.config)
        for key in ("resume", "output_dir", "observers"):
            before.pop(key, None)
            now.pop(key, None)
        changed = _first_difference(before, now)
        if changed:
            raise ConfigError(f"{run_dir} holds a run with other settings ({changed}); it can only be continued "
                              "with the same ones: use another output_dir for a new run.")

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
        OmegaConf.save(OmegaConf.create(self.config), path)
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
                 step: int | None = None) -> tuple[EvalResult, dict]:
        result = self.evaluator.evaluate(model, tokenizer, splits.test, scorer, name, step=step)
        ctx.record_evaluation(result)
        return result, {"accuracy": result.accuracy, "n": result.n}

    def train(self, ctx: RunContext, model: Any, tokenizer: Any, splits: DataSplits, scorer: Scorer,
              checkpoint: Path | None = None) -> tuple[TrainResult, dict]:
        functions, weights = self.reward.trl_functions(scorer)
        resumed_from_step = checkpoint_step(checkpoint) if checkpoint else None  # read now: rotation may delete it
        events = _Events(self, ctx, tokenizer, splits, scorer)
        result = self.trainer.train(TrainInputs(
            model=model, tokenizer=tokenizer, train=splits.train, scorer=scorer, reward_functions=functions,
            reward_weights=weights, output_dir=str(ctx.run_dir / "checkpoints"), seed=ctx.seed, events=events,
            resume_from=str(checkpoint) if checkpoint else None,
        ))
        ctx.results["train"] = {"global_step": result.global_step, "runtime_s": round(result.runtime_s, 1),
                                "resumed_from_step": resumed_from_step}
        ctx.results["train_history"] = result.history
        return result, ctx.results["train"]

    def save(self, ctx: RunContext, model: Any, tokenizer: Any) -> tuple[str, dict]:
        path = self.model.save(model, tokenizer, str(ctx.run_dir / "model"))
        ctx.results["artifacts"]["model"] = path
        return path, {"model": path}

    def teardown(self, ctx: RunContext) -> None:
        """Always runs: write whatever results exist, even after a failure (nothing is lost)."""
        try:
            ctx.results["artifacts"]["results"] = str(ctx.write_results())
        except OSError as e:  # the disk may be why we failed; do not mask the original error
            log.warning("Could not write results.json: %s", e)


class _Events:
    """A training loop's events, as observer events; evaluates every ``eval.eval_steps`` optimizer steps."""

    def __init__(self, pipeline: PipelineOrchestrator, ctx: RunContext, tokenizer: Any, splits: DataSplits,
                 scorer: Scorer):
        self.pipeline, self.ctx, self.tokenizer, self.splits, self.scorer = pipeline, ctx, tokenizer, splits, scorer
        self.max_steps = pipeline.trainer.max_steps

    def log(self, step: int, metrics: dict[str, float], warnings: list[str]) -> None:
        self.ctx.emit("on_train_log", step=step, max_steps=self.max_steps, metrics=metrics, warnings=warnings)

    def step_end(self, step: int, model: Any) -> None:
        every = self.pipeline.evaluator.eval_steps
        if every and step % every == 0 and step < self.max_steps:
            self.pipeline.evaluate(self.ctx, f"step_{step}", model, self.tokenizer, self.splits, self.scorer, step)


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """``key: old -> new`` for the first setting that differs between two plain configs, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(dict.fromkeys([*a, *b])):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} -> {b!r}"
