"""Where a run starts: afresh, or from what a run before it left in the same directory (``resume=auto``, the
default): its ``results.json``, the done-markers of finished stages, and the latest complete checkpoint of the
first unfinished stage. A run continues only with the settings it started with (its ``config.yaml``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlvr.errors import ConfigError
from rlvr.orchestration.stages import Stage
from rlvr.train.checkpoints import checkpoint_commit, checkpoint_step, code_commit, latest_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePoint:
    """``checkpoint``: what the first unfinished stage continues from; ``previous``: the results.json found;
    ``step``: the global step ``metrics.jsonl`` is cut back to (None: a fresh run, whose metrics start empty)."""

    checkpoint: Path | None = None
    previous: dict[str, Any] = field(default_factory=dict)
    step: int | None = None

    @property
    def finished(self) -> bool:
        """The run in the directory finished: nothing to do."""
        return self.previous.get("run", {}).get("status") == "success"


def resume_point(run_dir: Path, stages: list[Stage], resume: str | None, config: dict[str, Any],
                 other_commit: bool = False) -> ResumePoint:
    """Where the run in ``run_dir`` starts. ``resume``: ``auto`` (the latest complete checkpoint, if any), a
    checkpoint's path, or None (refuse a directory that already holds a run). ``config``: the run's settings,
    which must be those of the run found. ``other_commit``: a checkpoint written by another commit of the code
    may be continued (see :func:`check_same_code`)."""
    path = run_dir / "results.json"
    if not resume:
        if path.is_file():
            raise ConfigError(f"{run_dir} already holds a run and resume=null: use resume=auto to continue it, "
                              "or another output_dir.")
        return ResumePoint()
    previous = json.loads(path.read_text()) if path.is_file() else {}
    current = next((s for s in stages if s.record() is None), None)
    checkpoint = None
    if current is not None:
        checkpoint = latest_checkpoint(current.checkpoints) if resume == "auto" else Path(resume)
    started = bool(previous) or any(s.record() for s in stages)
    if started or checkpoint is not None:
        check_same_job(run_dir, config)
    if checkpoint is not None:
        check_same_code(checkpoint, other_commit)
        log.info("[rlvr] resuming %s from %s", run_dir, checkpoint.relative_to(run_dir)
                 if checkpoint.is_relative_to(run_dir) else checkpoint)
        return ResumePoint(checkpoint, previous, current.offset + checkpoint_step(checkpoint))
    if current is not None and started:
        log.warning("[rlvr] %s holds a run without a complete checkpoint of its current stage: %s starts again "
                    "from its first step.", run_dir, f"stage {current.label}" if current.staged else "training")
    if not started:
        return ResumePoint(previous=previous)
    return ResumePoint(None, previous, current.offset if current is not None else sum(s.loop.max_steps
                                                                                     for s in stages))


def check_same_job(run_dir: Path, config: dict[str, Any]) -> None:
    """A run continues only with the settings it started with (its config.yaml): a changed setting would mix two
    jobs in one directory."""
    saved = run_dir / "config.yaml"
    if not saved.is_file() or not config:
        return
    before, now = OmegaConf.to_container(OmegaConf.load(saved), resolve=True), dict(config)
    for key in ("resume", "resume_other_commit", "output_dir", "observers"):
        before.pop(key, None)
        now.pop(key, None)
    changed = _first_difference(before, now)
    if changed:
        raise ConfigError(f"{run_dir} holds a run with other settings ({changed}); it can only be continued "
                          "with the same ones: use another output_dir for a new run.")


def check_same_code(checkpoint: Path, other_commit: bool = False) -> None:
    """A checkpoint is continued by the commit of the code that wrote it (its ``rlvr_state.json`` records it),
    unless ``other_commit``; a difference allowed is still said."""
    written, running = checkpoint_commit(checkpoint), code_commit()
    if written and running and written != running and not other_commit:
        raise ConfigError(f"{checkpoint} was written by commit {written[:12]}, and this code is commit "
                          f"{running[:12]}: resume with the code that wrote it (git checkout {written[:12]}), "
                          "or set resume_other_commit=true to continue with this code.")
    if written != running:
        log.warning("[rlvr] %s was written by commit %s; this code is commit %s.", checkpoint.name,
                    (written or "unknown")[:12], (running or "unknown")[:12])


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """``key: old -> new`` for the first setting that differs between two plain configs, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(dict.fromkeys([*a, *b])):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} -> {b!r}"
