"""Preflight: what a run would do, found out in seconds before paying for it.

``python run_pipeline.py <overrides> preflight=true`` (or ``rlvr-train``, or every job of a ``-m`` sweep) builds the
job exactly as a run would (the same validation, components, data, prompt, scorer, reward suite and training
loop), then instead of running it checks

- the data (:mod:`rlvr.preflight.data`): prompt lengths against the prompt budget, gold answers refused at load,
  held-out questions seen in training, the prompt asking for the format the scorer reads, the reward-hacking audit;
- memory (:mod:`rlvr.preflight.memory`): weights, gradients, optimizer state, activations and KV cache per device
  for the configured model, dtype, LoRA/quantisation, optimizer, batch, lengths, checkpointing and launch, from
  shapes on the meta device, against the device's memory, with what would make it fit;
- behaviour (:mod:`rlvr.preflight.behaviour`, ``preflight.sample`` > 0): a few training prompts sampled with the
  configured model and sampling settings, scored by the run's scorer and rewards: parse rate, format rate,
  truncation, reward mean and spread, flat groups;
- time and cost (:mod:`rlvr.preflight.timing`): one timed training step per stage and one evaluation batch,
  extrapolated to the run, priced from the dated table beside the Terraform variables.

It prints one table with a verdict line per check, writes ``preflight.json`` into the run directory and the command
exits 0 when no check failed, 1 otherwise. It never trains: the timed step's weights are thrown away, nothing is
saved but ``preflight.json``. ``preflight.sample=0`` runs the data and memory checks alone, without loading model
weights.

It checks the job as it would run: with ``pipeline.trial`` (``experiment=smoke``) applied, every stage of
``pipeline.stages``, every round of a loop in rounds (``train.rounds``: each round a stage; one step is timed per
loop, the rounds of a loop take the same time). A streamed dataset (``data.streaming=true``) is read no further than
the first ``preflight.stream_rows`` training rows (the data checks and the behaviour sample) and the timed step's.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr.config import build, validate, with_defaults
from rlvr.data import ReasoningGymData
from rlvr.data.streaming import TrainStream
from rlvr.errors import ConfigError
from rlvr.evaluation import Evaluator
from rlvr.interfaces import Rewards
from rlvr.model import HFModel
from rlvr.orchestration import PipelineOrchestrator, build_pipeline
from rlvr.orchestration.stages import Stage, apply_trial
from rlvr.preflight import behaviour as behave
from rlvr.preflight.data import (
    check_answer_format,
    check_audit,
    check_gold_answers,
    check_overlap,
    check_prompt_length,
    prompt_tokens,
    stream_sample,
)
from rlvr.preflight.memory import (
    GIB,
    Launch,
    ModelShape,
    Workload,
    estimate,
    launch_from,
    optimizer_bytes,
    shape_of,
    suggestions,
    trainable_params,
    weight_bytes,
)
from rlvr.preflight.report import Check, Report
from rlvr.preflight.settings import PreflightSettings
from rlvr.preflight.timing import (
    Price,
    RunTime,
    StepTime,
    check_cost,
    check_time,
    checkpoints,
    evaluations,
    price,
    time_step,
    write_speed,
)
from rlvr.scoring import Scorer

log = logging.getLogger(__name__)

__all__ = ["Check", "PreflightSettings", "Report", "run", "split"]

TARGET = f"{__name__}.PreflightSettings"


def split(cfg: DictConfig) -> tuple[DictConfig, PreflightSettings | None]:
    """The job's config without its ``preflight`` node, and the preflight's settings when one was asked for.

    The node exists only when the command line sets it (``preflight=true`` is ``preflight.enabled=true``, see
    :func:`rlvr.config.open_overrides`); it is checked against :class:`PreflightSettings` like any component.
    """
    if "preflight" not in cfg:
        return cfg, None
    node = cfg._get_node("preflight")
    if not isinstance(node, DictConfig):
        raise ConfigError(f"preflight: expected true or false (or preflight.<setting>=...), got {node._value()!r}.")
    settings_cfg = OmegaConf.create({"_target_": TARGET, **OmegaConf.to_container(node, resolve=True)})
    validate(settings_cfg, "preflight")
    settings = build(settings_cfg)
    rest = OmegaConf.masked_copy(cfg, [str(k) for k in cfg.keys() if k != "preflight"])
    if not settings.enabled:
        given = [k for k in node.keys() if k != "enabled"]
        if given:
            raise ConfigError(f"preflight.{given[0]} is a setting of the preflight, which runs only with "
                              "preflight=true (it then replaces the run); add preflight=true, or drop preflight.*.")
        return rest, None
    return rest, settings


def run(cfg: DictConfig, settings: PreflightSettings, run_dir: str | Path) -> Report:
    """Build the job of ``cfg`` as a run would, check it (see the module docstring), print the table, write
    ``preflight.json`` into ``run_dir``; returns the report."""
    began = time.perf_counter()
    pipeline = build_pipeline(cfg)
    cfg = with_defaults(cfg)
    apply_trial(cfg)  # as build_pipeline does: the timed steps are built from these nodes
    checker = _Preflight(pipeline, cfg, settings, Path(run_dir))
    try:
        checks = checker.checks()
    finally:
        if pipeline.reward is not None:
            pipeline.reward.close()
    report = Report(checker.job, checks, time.perf_counter() - began, checker.phases)
    report.write(Path(run_dir))
    log.info("%s\n\npreflight.json: %s", report.table(), Path(run_dir) / "preflight.json")
    return report


def _loop_settings(loop: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A training loop's settings and its TRL pass-through fields: every loop keeps its signature's values in
    ``settings``; the loops over a TRL trainer keep ``train.extra`` in ``extra`` (PPO, ours, has none)."""
    return dict(loop.settings), dict(getattr(loop, "extra", None) or {})


class _Preflight:
    """The checks of one job, in order; what later checks need (data, tokenizer, shapes) is kept here."""

    def __init__(self, pipeline: PipelineOrchestrator, cfg: DictConfig, settings: PreflightSettings, run_dir: Path):
        self.pipeline, self.cfg, self.settings, self.run_dir = pipeline, cfg, settings, run_dir
        self.stages = pipeline.stages(run_dir)
        self.job = self._describe()
        self.phases: dict[str, float] = {}  # the preflight's own seconds, by part

    # --- the whole sequence ----------------------------------------------------------------------------------
    def checks(self) -> list[Check]:
        p, s = self.pipeline, self.settings
        start = time.perf_counter()
        splits = p.data.load(p.prompts)
        data_s = self._phase("data", start)
        scorer = Scorer(p.prompts.answer_format, p.data.verifier)
        streamed = isinstance(splits.train, TrainStream)
        if streamed:  # not read whole: its first rows
            train, read_stats = stream_sample(splits.train, s.stream_rows)
            stats = {**splits.stats, **read_stats}
        else:
            train, stats = splits.train.to_list(), splits.stats
        test = splits.test.to_list()
        model = p.model if isinstance(p.model, HFModel) else None
        tokenizer = model.load_tokenizer() if model is not None else None
        shape = shape_of(model.load_config()) if model is not None else None
        lengths = (prompt_tokens(tokenizer, [r["prompt"] for r in train]),
                   prompt_tokens(tokenizer, [r["prompt"] for r in test])) if tokenizer is not None else ([], [])
        out = [self._prompt_length(shape, *lengths),
               check_gold_answers(stats, s.max_refused_golds),
               check_overlap(train, test, stats, s.max_overlap),
               check_answer_format(p.prompts, train[:200], scorer, s.min_gold_format),
               self._audit(train, scorer)]
        if streamed:
            for check in out[:3]:
                check.summary += f" (streamed: the first {len(train)} training rows read)"
                check.figures["streamed_train_rows"] = len(train)
        quote = price(s.prices, s.instance_type, s.spot)
        memory, work = self._memory(shape, max(lengths[0], default=0), max(lengths[1], default=0), quote)
        out.append(memory)
        self._phase("data and memory checks", start)
        if s.sample == 0 or model is None:
            why = "preflight.sample=0: no model weights loaded" if s.sample == 0 else "the model is not an HFModel"
            out += [Check("behaviour", "skip", why), Check("time", "skip", why),
                    check_cost(None, quote, s.max_cost_usd, "")]
            return out
        start = time.perf_counter()
        policy, tokenizer = model.load()
        load_s = self._phase("model load", start)
        sampling = next((st for st in self.stages if {"num_generations", "prompts_per_step"} & set(st.loop.settings)),
                        None)
        sample = self._sample(policy, tokenizer, train, scorer, sampling)
        eval_s, eval_rows = self._timed_eval(policy, tokenizer, splits, scorer)
        steps = self._timed_steps(policy, tokenizer, splits, scorer)
        self._measured(memory)
        out += self._behaviour(sample, steps, scorer, sampling, tokenizer, policy)
        run = self._run_time(steps, eval_s, eval_rows, len(test), load_s, data_s, shape, work)
        device = _device_name()
        out.append(check_time(run, steps, device, s.max_hours))
        out.append(check_cost(run.total_s, quote, s.max_cost_usd, device))
        return out

    def _key(self, stage: Stage) -> str:
        """Where a stage's loop is set: ``train`` (a run without ``pipeline.stages``, in rounds or not), else
        ``pipeline.stages.<name>`` (a stage's rounds are named ``<name>-round<r>``)."""
        named = self.pipeline.plan.stages
        return "train" if not named else "pipeline.stages." + next(n for n, loop in named.items() if loop is stage.loop)

    def _phase(self, name: str, start: float) -> float:
        """Seconds since ``start``, kept as the preflight's own time for ``name``."""
        self.phases[name] = time.perf_counter() - start
        return self.phases[name]

    def _describe(self) -> str:
        p = self.pipeline
        model = p.model.name_or_path if isinstance(p.model, HFModel) else type(p.model).__name__
        data = type(p.data).__name__ + (f" {p.data.task or 'mixture'}" if isinstance(p.data, ReasoningGymData) else "")
        data += " streamed" if getattr(p.data, "streaming", False) else ""
        loops = []
        for stage in self.stages:
            s, _ = _loop_settings(stage.loop)
            what = f"{type(stage.loop).__name__} {stage.loop.max_steps} steps"
            if "num_generations" in s:
                what += (f" x {s['per_device_train_batch_size'] * s['gradient_accumulation_steps']} completions "
                         f"({s['num_generations']} per prompt) x {s['max_completion_length']} tokens")
            loops.append(what)
        trained = " then ".join(loops) or "evaluation only"
        return f"{model} | {data} ({p.data.verifier.answer_type} answers) | {trained}"

    # --- data ------------------------------------------------------------------------------------------------
    def _prompt_length(self, shape: ModelShape | None, train: list[int], test: list[int]) -> Check:
        context = shape.context if shape is not None else None
        limit: tuple[int, str] | None = (context, "the model's context") if context else None
        completion = (0, "the completion budget")
        for stage in self.stages:
            s, extra = _loop_settings(stage.loop)
            prefix = self._key(stage)
            if s.get("max_length"):
                limit = (s["max_length"], f"{prefix}.max_length")
            elif s.get("rollout") == "vllm" and extra.get("vllm_max_model_length"):
                limit = (extra["vllm_max_model_length"], f"{prefix}.extra.vllm_max_model_length")
            if s.get("max_completion_length"):
                completion = (s["max_completion_length"], f"{prefix}.max_completion_length")
        evaluator = self.pipeline.evaluator
        eval_limit = (context, "the model's context") if context else None
        eval_completion = ((evaluator.max_new_tokens, "eval.max_new_tokens") if isinstance(evaluator, Evaluator)
                           else (0, "the completion budget"))
        return check_prompt_length(train, test, limit, completion, eval_limit, eval_completion,
                                   self.settings.max_truncated_prompts)

    def _audit(self, train: list[dict[str, Any]], scorer: Scorer) -> Check:
        if self.pipeline.reward is None or not self.settings.audit_rows:
            return Check("reward_audit", "skip", "no reward to audit" if self.pipeline.reward is None
                         else "preflight.audit_rows=0")
        suite = build(OmegaConf.merge(self.cfg.reward, {"isolation": "thread"}))  # a few hundred cheap calls
        try:
            return check_audit(train[:self.settings.audit_rows], scorer, suite, self.settings.max_hack_fraction,
                               self.settings.seed)
        finally:
            suite.close()

    # --- memory ----------------------------------------------------------------------------------------------
    def _memory(self, shape: ModelShape | None, prompt_max: int, test_prompt_max: int, quote: Price | str
                ) -> tuple[Check, Workload | None]:
        if shape is None or not self.stages:
            return Check("memory", "skip", "no Hugging Face model to size" if shape is None
                         else "evaluation only: nothing trains"), None
        budget_total, device, gpu_target = _device_memory(self.settings, quote)
        model: HFModel = self.pipeline.model
        dtype = model.dtype if model.dtype != "auto" else ("bfloat16" if gpu_target else str(model.torch_dtype())
                                                            .removeprefix("torch."))
        launch = launch_from(self.settings.launch, self.settings.num_processes)
        runtime = None if gpu_target else _rss()
        works = [self._workload(stage.loop, model, dtype, prompt_max, test_prompt_max, gpu_target, launch)
                 for stage in self.stages]
        estimates = [estimate(shape, w, launch, runtime) for w in works]
        worst = max(range(len(works)), key=lambda i: estimates[i].peak)
        work, found = works[worst], estimates[worst]
        budget = int(budget_total * (1 - self.settings.memory_margin))
        figures = {"per_device_gib": found.gib(), "peak_gib": round(found.peak / GIB, 3), "phase": found.phase,
                   "device_gib": round(budget_total / GIB, 2), "usable_gib": round(budget / GIB, 2),
                   "device": device, "launch": launch.label, "trainable_parameters": found.trainable,
                   "parameters": shape.params, "notes": found.notes}
        where = f"{launch.label}, {dtype}" + (f", stage {self.stages[worst].name}" if len(self.stages) > 1 else "")
        summary = (f"{found.describe()} at its peak ({found.phase}; {where}) vs {budget / GIB:.2f} GiB usable of "
                   f"{device}")
        if found.peak <= budget:
            return Check("memory", "pass", summary + ": fits", figures=figures), work
        gpus = quote.gpus if isinstance(quote, Price) and quote.gpus > 1 else 8
        fixes = suggestions(shape, work, launch, runtime, budget, gpus)
        figures["fits_with"] = {name: round(e.peak / GIB, 3) for name, e in fixes}
        advice = ("; ".join(f"{name} ({e.peak / GIB:.2f} GiB)" for name, e in fixes) if fixes
                  else "nothing tried fits: a device with more memory, or a smaller model")
        return Check("memory", "fail", summary + ": does not fit",
                     f"needs {found.peak / GIB:.2f} GiB per device but {budget / GIB:.2f} GiB are usable (preflight."
                     f"memory_margin={self.settings.memory_margin:g} of {device} kept free); try: {advice}.",
                     figures), work

    def _workload(self, loop: Any, model: HFModel, dtype: str, prompt_max: int, test_prompt_max: int, gpu: bool,
                  launch: Launch) -> Workload:
        """What one step of ``loop`` asks of the model (see :class:`Workload`); a loop is recognised by its
        settings: ``num_generations`` (GRPO, RLOO: TRL's fused head, on a GPU over the completion only), then
        ``prompts_per_step`` (PPO), else one pass over prompt and completion (SFT, and the preference loops:
        ``preferences``, chosen and rejected side by side)."""
        s, extra = _loop_settings(loop)
        completion = s.get("max_completion_length") or 0
        evaluator = self.pipeline.evaluator
        evaluated = isinstance(evaluator, Evaluator)
        common = {"dtype": dtype, "gradient_checkpointing": model.gradient_checkpointing,
                  "lora_r": model.lora.r if model.lora.enabled else None,
                  "lora_targets": model.lora.target_modules if isinstance(model.lora.target_modules, str)
                  else tuple(model.lora.target_modules),
                  "quant_bits": 4 if model.quant.load_in_4bit else 8 if model.quant.load_in_8bit else None,
                  "optimizer": s.get("optim") or extra.get("optim") or "adamw_torch",
                  "eval_rows": evaluator.batch_size if evaluated else 0,
                  "eval_tokens": test_prompt_max + evaluator.max_new_tokens if evaluated else 0}
        if "num_generations" in s:
            micro, group = s["per_device_train_batch_size"], s["num_generations"]
            rows = micro * (extra.get("steps_per_generation") or s["gradient_accumulation_steps"])
            shared = (s.get("shared_prefix") and not model.gradient_checkpointing and launch.processes == 1)
            return Workload(micro_batch=micro, prompt_tokens=prompt_max, completion_tokens=completion,
                            logit_tokens=completion if gpu else prompt_max + completion, fused_head=True,
                            shared_prompts=-(-micro // group) if shared else None, rollout_rows=rows,
                            rollout_tokens=prompt_max + completion,
                            reference=s.get("beta", 0) > 0 and not model.lora.enabled, **common)
        if "prompts_per_step" in s:
            return Workload(micro_batch=s["mini_batch_size"], prompt_tokens=prompt_max, completion_tokens=completion,
                            logit_tokens=prompt_max + completion, rollout_rows=s["prompts_per_step"],
                            rollout_tokens=prompt_max + completion, reference=True, critic=True, **common)
        length = s.get("max_length") or prompt_max + completion
        pairs = 2 if "preferences" in s else 1
        return Workload(micro_batch=s["per_device_train_batch_size"] * pairs, prompt_tokens=min(prompt_max, length),
                        completion_tokens=length - min(prompt_max, length), logit_tokens=length,
                        rollout_rows=s.get("sample_batch_size") or 0, rollout_tokens=prompt_max + completion,
                        reference=s.get("reference") == "model" and not model.lora.enabled, **common)

    def _measured(self, memory: Check) -> None:
        """Add this process's measured peak (after a rollout, an evaluation batch and a training step) to the memory
        check: the GPU's allocated peak, else the resident set's."""
        import torch

        if torch.cuda.is_available():
            peak, what = torch.cuda.max_memory_allocated(), "allocated on the GPU"
        else:
            import resource

            peak, what = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "resident (RSS)"
        memory.figures["measured_peak_gib"] = round(peak / GIB, 3)
        memory.summary += f"; this preflight's measured peak: {peak / GIB:.2f} GiB {what}"

    # --- behaviour -------------------------------------------------------------------------------------------
    def _sample(self, model: Any, tokenizer: Any, train: list[dict[str, Any]], scorer: Scorer, stage: Any
                ) -> behave.Behaviour | None:
        """Groups of further training prompts, sampled and scored before the timed step changes the model: as
        many as ``preflight.sample`` asks beyond the prompts the timed step samples itself."""
        if stage is None or self.pipeline.reward is None:
            return None
        start = time.perf_counter()
        s, extra = _loop_settings(stage.loop)
        group = s.get("num_generations", 1)
        in_step = (s["per_device_train_batch_size"] * (extra.get("steps_per_generation") or
                                                      s["gradient_accumulation_steps"]) // group
                   if "num_generations" in s else s["prompts_per_step"])
        wanted = min(max(self.settings.sample - in_step, 0), len(train))
        if not wanted:
            return None
        rows = [train[i] for i in random.Random(self.settings.seed).sample(range(len(train)), wanted)]
        config = behave.generation_config(s, extra, model, tokenizer)
        import torch

        torch.manual_seed(self.pipeline.seed)
        ids, cut = behave.sample(model, tokenizer, rows, group, config, engine=s.get("rollout") != "trl",
                                 compile=s.get("rollout_compile", False))
        found = behave.score(rows, ids, cut, group, tokenizer, scorer, self.pipeline.reward.trl_functions(scorer))
        self._phase("behaviour sample", start)
        return found

    def _behaviour(self, sample: behave.Behaviour | None, steps: list[StepTime], scorer: Scorer, stage: Any,
                   tokenizer: Any, model: Any) -> list[Check]:
        """The behaviour checks on the separate sample and the groups the timed step sampled."""
        if stage is None or self.pipeline.reward is None:
            return [Check("behaviour", "skip", "no stage samples from the policy during training")]
        s, extra = _loop_settings(stage.loop)
        stops = behave.stop_tokens(behave.generation_config(s, extra, model, tokenizer), tokenizer)
        step = next(st for st in steps if st.stage == stage.name)
        from_step = behave.from_calls(step.calls, s.get("num_generations", 1), scorer, stops,
                                      dict(self.pipeline.reward.weights))
        found = sample + from_step if sample is not None and from_step is not None else sample or from_step
        if found is None:
            return [Check("behaviour", "skip", "the timed step made no reward call")]
        data = self.pipeline.data
        harder = (f"data.params.{data.task}" if isinstance(data, ReasoningGymData) and data.task else
                  "data.mixture.<task>.params" if isinstance(data, ReasoningGymData) else "the data's difficulty")
        return behave.checks(found, scorer, s["max_completion_length"], self.settings, harder)

    # --- time ------------------------------------------------------------------------------------------------
    def _timed_eval(self, model: Any, tokenizer: Any, splits: Any, scorer: Scorer) -> tuple[float, int]:
        """Seconds of one evaluation batch (the configured evaluator on its batch of held-out rows), and its rows."""
        evaluator = self.pipeline.evaluator
        if not isinstance(evaluator, Evaluator):
            return 0.0, 0
        rows = min(evaluator.batch_size, len(splits.test), evaluator.num_examples or len(splits.test))
        progress, evaluator.progress = evaluator.progress, False
        start = time.perf_counter()
        try:
            evaluator.evaluate(model, tokenizer, splits.test.select(range(rows)), scorer, "preflight")
        finally:
            evaluator.progress = progress
        return self._phase("evaluation batch", start), rows

    def _timed_steps(self, model: Any, tokenizer: Any, splits: Any, scorer: Scorer) -> list[StepTime]:
        """One step of each stage's loop, built for one step without checkpoints (it trains ``model``: nothing
        runs on the model after it). The rounds of a loop in rounds are timed once: each round's step is the
        same."""
        start = time.perf_counter()
        steps: list[StepTime] = []
        timed: dict[int, StepTime] = {}  # id of a loop -> its timed step
        rewards = self.pipeline.reward.trl_functions(scorer) if self.pipeline.reward else Rewards()
        for stage in self.stages:
            if id(stage.loop) in timed:
                steps.append(dataclasses.replace(timed[id(stage.loop)], stage=stage.name))
                continue
            node = OmegaConf.select(self.cfg, self._key(stage))
            one = build(OmegaConf.merge(node, {"max_steps": 1, "save_steps": 0, "logging_steps": 1}))
            timed[id(stage.loop)] = time_step(stage.name, one, stage.loop.max_steps, model, tokenizer, splits.train,
                                              scorer, rewards, stage.seed(self.pipeline.seed))
            steps.append(timed[id(stage.loop)])
        self._phase("timed steps", start)
        return steps

    def _run_time(self, steps: list[StepTime], eval_s: float, eval_rows: int, test_rows: int, load_s: float,
                  data_s: float, shape: ModelShape, work: Workload | None) -> RunTime:
        evaluator = self.pipeline.evaluator
        per_eval = 0.0
        count = 0
        if isinstance(evaluator, Evaluator) and eval_rows:
            rows = min(evaluator.num_examples or test_rows, test_rows)
            per_eval = eval_s * rows / eval_rows
            count = evaluations(evaluator.baseline, evaluator.eval_steps, [st.max_steps for st in steps])
        saves = sum(checkpoints(stage.loop.max_steps, stage.loop.settings.get("save_steps", 0))
                    for stage in self.stages)
        speed = write_speed(self.run_dir)
        weights = trained = 0
        if work is not None:
            trainable = trainable_params(shape, work)
            weights = weight_bytes(shape, work) if work.lora_r is None else trainable * 4
            param_bytes = 4 if work.lora_r is not None else work.dtype_bytes
            trained = weights + optimizer_bytes(trainable, param_bytes, work.optimizer, False)
        parts = {"model load": load_s, "data": data_s, "trainer set-up": sum(st.setup_s for st in steps),
                 "training steps": sum(st.max_steps * st.step_s for st in steps),
                 "evaluations": count * per_eval, "checkpoints": saves * trained / speed,
                 "saving the model": weights / speed if self.pipeline.save_model else 0.0}
        figures = {"evaluations": count, "eval_s_each": round(per_eval, 2), "eval_rows_timed": eval_rows,
                   "checkpoints": saves, "checkpoint_gib": round(trained / GIB, 3),
                   "write_mib_per_s": round(speed / 1024**2, 1)}
        return RunTime(parts, figures)


def _device_memory(settings: PreflightSettings, quote: Price | str) -> tuple[int, str, bool]:
    """Bytes of one device, what it is, and whether it is a GPU."""
    import torch

    if settings.device_memory_gib is not None:
        gib = settings.device_memory_gib
        return int(gib * GIB), f"preflight.device_memory_gib={gib:g}", True
    if settings.instance_type is not None and isinstance(quote, Price):
        return int(quote.gpu_memory_gib * GIB), f"a {quote.instance} GPU ({quote.gpu_memory_gib:g} GiB)", True
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return props.total_memory, f"{props.name} ({props.total_memory / GIB:.1f} GiB)", True
    import psutil

    ram = psutil.virtual_memory()
    return ram.available, f"this machine's RAM ({ram.available / GIB:.1f} GiB free of {ram.total / GIB:.1f})", False


def _rss() -> int:
    """Memory this process holds now (interpreter and libraries): the CPU run's runtime overhead."""
    import psutil

    return psutil.Process().memory_info().rss


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (this machine)"
    threads = torch.get_num_threads()
    return f"this machine's CPU ({threads} torch thread{'s' if threads > 1 else ''})"

