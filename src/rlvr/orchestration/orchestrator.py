"""The pipeline: build the components from the composed config, check them, and run the lifecycle

    setup -> data -> model -> rewards -> baseline_eval -> train -> final_eval -> save   (teardown always)

notifying observers at every stage. Each stage is a few lines that delegate to a component; the
orchestrator holds no algorithm and parses no strings.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from rlvr.config import ConfigError, check_choices, missing_keys, register_configs
from rlvr.interfaces import EvalResult
from rlvr.observers import Observers
from rlvr.scoring import Scorer

log = logging.getLogger(__name__)
COMPONENT_GROUPS = ("data", "prompts", "model", "reward", "train", "eval")


def build(node: DictConfig, where: str, **kwargs: Any) -> Any:
    """``instantiate`` with user mistakes turned into a ConfigError that names the group."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="object", **kwargs)
    except InstantiationException as e:
        cause = e.__cause__ or e
        if isinstance(cause, ConfigError):
            raise ConfigError(str(cause)) from None
        if isinstance(cause, TypeError):
            raise ConfigError(f"{where}: {cause}") from None
        raise


class PipelineOrchestrator:
    """Runs one RLVR training job described by ``cfg`` and writes everything into ``run_dir``.

    Construction validates the whole config and builds every component (cheap: nothing loads yet), so a
    config mistake fails in seconds with a ConfigError, before any model or dataset is touched.
    """

    def __init__(self, cfg: DictConfig, run_dir: str | Path):
        register_configs()
        missing = missing_keys(cfg)
        if missing:
            raise ConfigError(f"These keys must be set: {', '.join(missing)}.")
        check_choices(cfg)
        self.cfg, self.seed = cfg, int(cfg.seed)
        self.run_dir = Path(run_dir)
        self.data = build(cfg.data, "data")
        self.prompt = build(cfg.prompts, "prompts")
        self.model_component = build(cfg.model, "model")
        self.rewards = build(cfg.reward, "reward", _recursive_=False)
        self.trainer = build(cfg.train, "train")
        self.evaluator = build(cfg.eval, "eval")
        self.observers = Observers([build(node, f"observers.{name}") for name, node in (cfg.observers or {}).items()])
        self.results: dict[str, Any] = {"during_training": [], "artifacts": {}}
        self.model: Any = None
        self.tokenizer: Any = None

    # --- lifecycle -------------------------------------------------------------------------------------------
    def stages(self) -> list[tuple[str, Callable[[], dict]]]:
        return [
            ("setup", self.setup),
            ("data", self.load_data),
            ("model", self.load_model),
            ("rewards", self.build_rewards),
            ("baseline_eval", self.baseline_eval),
            ("train", self.train),
            ("final_eval", self.final_eval),
            ("save", self.save),
        ]

    def run(self) -> dict[str, Any]:
        """Run every stage; returns what ``results.json`` holds. Exceptions reach observers as a failed end."""
        config = OmegaConf.to_container(self.cfg, resolve=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.observers.notify("on_pipeline_start", config=config, run_dir=str(self.run_dir))
        status, error = "failed", None
        try:
            for name, stage in self.stages():
                self.observers.notify("on_step_start", step_name=name)
                self.observers.notify("on_step_end", step_name=name, output=stage() or {})
            status = "success"
        except BaseException as e:
            error = e
            raise
        finally:
            self.teardown()
            self.observers.notify("on_pipeline_end", status=status, error=error, results=self.results)
        return self.results

    def setup(self) -> dict:
        from transformers import set_seed

        set_seed(self.seed)
        OmegaConf.save(self.cfg, self.run_dir / "config.yaml", resolve=True)
        self.results["artifacts"]["config"] = str(self.run_dir / "config.yaml")
        return {"seed": self.seed}

    def load_data(self) -> dict:
        self.splits = self.data.load(self.prompt)
        self.results["data"] = self.splits.stats
        return self.splits.stats

    def load_model(self) -> dict:
        from rlvr.model import count_parameters

        self.model, self.tokenizer = self.model_component.load()
        trainable, total = count_parameters(self.model)
        self.results["model"] = {"trainable_parameters": trainable, "total_parameters": total}
        return self.results["model"]

    def build_rewards(self) -> dict:
        self.scorer = Scorer(self.prompt.answer_format, self.data.verifier)
        self.reward_funcs, self.reward_weights = self.rewards.trl_functions(self.scorer)
        return {"functions": ", ".join(f"{n}x{w:g}" for n, w in self.rewards.weights.items())}

    def baseline_eval(self) -> dict:
        if not self.evaluator.baseline:
            return {"skipped": True}
        return self._evaluate("baseline")

    def train(self) -> dict:
        max_steps = self.trainer.max_steps

        def on_log(step: int, metrics: dict, warnings: list[str]) -> None:
            self.observers.notify("on_train_log", step=step, max_steps=max_steps, metrics=metrics, warnings=warnings)

        def on_step_end(step: int, model: Any) -> None:
            every = self.evaluator.eval_steps
            if every and step % every == 0 and step < max_steps:
                self._evaluate(f"step_{step}", model=model, step=step)

        result = self.trainer.train(
            self.model, self.tokenizer, self.splits.train, self.reward_funcs, self.reward_weights,
            output_dir=str(self.run_dir / "checkpoints"), seed=self.seed, on_log=on_log, on_step_end=on_step_end,
        )
        self.model = result.model
        self.results["train"] = {"global_step": result.global_step, "runtime_s": round(result.runtime_s, 1)}
        self.results["train_history"] = result.history
        return self.results["train"]

    def final_eval(self) -> dict:
        return self._evaluate("final", step=self.results.get("train", {}).get("global_step"))

    def save(self) -> dict:
        path = self.model_component.save(self.model, self.tokenizer, str(self.run_dir / "model"))
        self.results["artifacts"]["model"] = path
        self.results["artifacts"]["results"] = str(self.run_dir / "results.json")
        self.write_results()
        return {"model": path}

    def teardown(self) -> None:
        """Always runs: write whatever results exist, even after a failure (nothing is lost)."""
        try:
            self.write_results()
        except OSError as e:  # the disk may be why we failed; do not mask the original error
            log.warning("Could not write results.json: %s", e)

    # --- helpers ---------------------------------------------------------------------------------------------
    def _evaluate(self, name: str, model: Any = None, step: int | None = None) -> dict:
        result: EvalResult = self.evaluator.evaluate(
            model if model is not None else self.model, self.tokenizer, self.splits.test, self.scorer, name, step=step
        )
        summary = result.summary()
        if name in ("baseline", "final"):
            self.results[name] = summary
        else:
            self.results["during_training"].append(summary)
        samples = self.run_dir / f"samples_{name}.jsonl"
        samples.write_text("".join(json.dumps(s) + "\n" for s in result.samples))
        self.observers.notify("on_evaluation", result=result)
        return {"accuracy": result.accuracy, "n": result.n}

    def write_results(self) -> None:
        path = self.run_dir / "results.json"
        path.write_text(json.dumps(self.results, indent=2, default=str))
