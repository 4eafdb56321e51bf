"""TensorBoard: training metrics and evaluations as scalars, each evaluation as a table, sample completions as
text, and the run's config, in ``<run_dir>/tensorboard``. Look at them with ``tensorboard --logdir outputs``.

A resumed run writes a new event file beside the old ones, starting with a purge marker at the step after its
checkpoint, so TensorBoard hides what the interrupted run logged past that step and every step shows once
(``metrics.jsonl`` is cut back the same way).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlvr.errors import ConfigError
from rlvr.interfaces import Count


class TensorBoardObserver:
    """Args: log_dir: the event files' directory, inside the run directory; num_samples: sample completions
    shown per evaluation (as a table of question, gold answer, completion, extracted answer, verdict)."""

    def __init__(self, log_dir: str = "tensorboard", num_samples: Count = 8):
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError('observers.tensorboard needs the tensorboard package: pip install "rlvr[tensorboard]".')
        self.log_dir, self.num_samples = log_dir, num_samples
        self.writer: Any = None
        self.path: Path | None = None

    def on_pipeline_start(self, config: dict, run_dir: str, resume_step: int | None = None, **_: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / self.log_dir
        # purge_step: TensorBoard drops every event of earlier files at this step or later (a fresh run: all).
        self.writer = SummaryWriter(str(self.path), purge_step=0 if resume_step is None else resume_step + 1)
        if resume_step is None:
            self.writer.add_text("config", _code(_yaml(config)), global_step=0)
        self.writer.flush()

    def on_train_log(self, step: int, max_steps: int, metrics: dict, warnings: list[str], **_: Any) -> None:
        if self.writer is None:
            return
        for key, value in metrics.items():
            if _number(value):
                self.writer.add_scalar(f"train/{key}", value, global_step=step)
        if warnings:
            self.writer.add_text("warnings", "\n\n".join(warnings), global_step=step)
        self.writer.flush()  # a killed run keeps every step it logged

    def on_evaluation(self, result: Any, **_: Any) -> None:
        """Scalars ``eval/<metric>`` at the evaluation's step (the baseline, before training, at step 0), a table
        of the evaluation's figures and one of its first samples, both at that step."""
        if self.writer is None:
            return
        step = result.step or 0
        s = result.summary()
        figures = {k: v for k, v in s.items() if _number(v) and k != "step"}
        figures.update({f"per_task/{t}": a for t, a in s["per_task"].items()})
        figures.update({f"per_level/{lv}": a for lv, a in s["per_level"].items()})  # a curriculum's held-out sets
        figures.update({k: v for k, v in s["extra"].items() if _number(v)})
        for key, value in figures.items():
            self.writer.add_scalar(f"eval/{key}", value, global_step=step)
        self.writer.add_text(f"evaluation/{result.name}", _table(["metric", "value"],
                                                                [[k, _fmt(v)] for k, v in figures.items()]),
                             global_step=step)
        shown = result.samples[: self.num_samples]
        if shown:
            columns = ["question", "gold", "completion", "extracted", "status"]
            self.writer.add_text(f"samples/{result.name}",
                                 _table(columns, [[_fmt(sample.get(c)) for c in columns] for sample in shown]),
                                 global_step=step)
        self.writer.flush()

    def on_pipeline_end(self, status: str, **_: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)


def _table(columns: list[str], rows: list[list[str]]) -> str:
    """A markdown table (TensorBoard's text tab renders markdown); cells on one line, pipes escaped.

    >>> print(_table(["a", "b"], [["1|2", "x\\ny"]]))
    | a | b |
    |---|---|
    | 1\\|2 | x<br>y |
    """
    cell = lambda text: text.replace("|", "\\|").replace("\n", "<br>")  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _yaml(config: dict) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(config)) if config else ""


def _code(text: str) -> str:
    """Markdown: a code block keeps the YAML's indentation."""
    return "\n".join("    " + line for line in text.splitlines())
