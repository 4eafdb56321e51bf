"""Weights & Biases: config, training metrics and evaluations. Offline (no account needed, ``wandb sync`` later):
``observers=wandb observers.wandb.mode=offline``. Prefer that to ``WANDB_MODE=offline`` in the environment: while
that variable is set, transformers prints "Running in WANDB offline mode" in every run, W&B observer or not."""

from __future__ import annotations

from typing import Any


class WandbObserver:
    """Args: project, entity, name, tags: the W&B run; mode: ``online``, ``offline`` or ``disabled``
    (null: W&B's own default, i.e. the ``WANDB_MODE`` environment variable, else online)."""

    def __init__(self, project: str = "rlvr", entity: str | None = None, name: str | None = None,
                 tags: list[str] = [], mode: str | None = None):  # noqa: B006
        self.project, self.entity, self.name, self.tags, self.mode = project, entity, name, list(tags), mode
        self.run: Any = None

    def on_pipeline_start(self, config: dict, run_dir: str, **_: Any) -> None:
        import wandb

        self.run = wandb.init(project=self.project, entity=self.entity, name=self.name, tags=self.tags,
                              mode=self.mode, dir=run_dir, config=config, reinit="finish_previous")

    def on_train_log(self, step: int, max_steps: int, metrics: dict, warnings: list[str], **_: Any) -> None:
        if self.run is not None:
            self.run.log({f"train/{k}": v for k, v in metrics.items()}, step=step)

    def on_evaluation(self, result: Any, **_: Any) -> None:
        if self.run is not None:
            s = result.summary()
            payload = {f"eval/{k}": v for k, v in s.items() if isinstance(v, (int, float)) and k != "step"}
            payload.update({f"eval/per_task/{t}": a for t, a in s["per_task"].items()})
            payload.update({f"eval/per_level/{lv}": a for lv, a in s["per_level"].items()})
            payload.update({f"eval/{k}": v for k, v in s["extra"].items() if isinstance(v, (int, float))})
            if result.step is not None:
                self.run.log(payload, step=result.step)
            else:
                self.run.summary.update({f"{result.name}/{k}": v for k, v in payload.items()})

    def on_pipeline_end(self, status: str, **_: Any) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "success" else 1)
            self.run = None
