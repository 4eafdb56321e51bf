"""Checkpoints that survive a kill, and stopping cleanly on SIGTERM/SIGINT.

We keep transformers' checkpoint format (``checkpoint-N/``: the model or LoRA adapter, ``optimizer.pt``,
``scheduler.pt``, ``rng_state.pth`` with the python, numpy and torch RNG states, ``trainer_state.json`` with the
step and log history; ``trainer.train(resume_from_checkpoint=...)`` restores all of it and skips the batches
already seen) and add two things:

- **Atomic writes.** The Trainer writes ``checkpoint-N`` in place, so a kill during a save leaves a half
  checkpoint that ``get_last_checkpoint`` would pick. :func:`atomic_checkpoints` makes the Trainer write into
  ``.checkpoint-N.tmp/``, fsyncs every file, then renames it to ``checkpoint-N`` and fsyncs the directory.
  Older checkpoints beyond ``keep`` are deleted only after the new one is complete.
- **``rlvr_state.json``**, written last inside the checkpoint: the step, the prompts seen (the data position),
  the time, and what a subclass adds through ``extra_state()`` (a curriculum's levels: :mod:`rlvr.train.feed`).
  A checkpoint without it is not complete (:func:`latest_checkpoint` ignores it).

:class:`StopOnSignal` turns SIGTERM (a spot machine's two-minute notice) and SIGINT (Ctrl-C) into "save a
checkpoint at the end of this step, then stop"; a second signal is not caught again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rlvr.errors import DiskFull, no_space

STATE_FILE = "rlvr_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` and the directories themselves to disk."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root`` (``checkpoint-N`` holding ``rlvr_state.json``), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)))


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under ``root``, or None."""
    found = checkpoints(root)
    return found[-1] if found else None


def checkpoint_step(path: str | Path) -> int:
    return int(checkpoint_state(path)["step"])


def checkpoint_state(path: str | Path) -> dict[str, Any]:
    """What a complete checkpoint's ``rlvr_state.json`` holds."""
    return json.loads((Path(path) / STATE_FILE).read_text())


def atomic_checkpoints(trainer_cls: type, keep: int, prompts_per_step: int) -> type:
    """``trainer_cls`` (a transformers/TRL Trainer) whose checkpoints are written atomically, ``keep`` kept."""

    class AtomicCheckpoints(trainer_cls):  # type: ignore[misc, valid-type]
        _staging: str | None = None

        def extra_state(self) -> dict[str, Any]:
            """More to keep in ``rlvr_state.json`` (JSON), restored by whoever wrote it."""
            return {}

        def _get_output_dir(self, trial: Any) -> str:
            return self._staging or super()._get_output_dir(trial)

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            root = Path(super()._get_output_dir(trial))
            step = self.state.global_step
            staging = root / f".checkpoint-{step}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                self._save_staged(model, trial, root, step, staging)
            except OSError as e:
                if not no_space(e):
                    raise
                shutil.rmtree(staging, ignore_errors=True)  # the half-written checkpoint only takes space
                previous = latest_checkpoint(root)
                kept = f"the previous one ({previous.name}) is intact" if previous else "there is no earlier one"
                raise DiskFull(e.errno, f"The disk is full ({e.strerror}): checkpoint-{step} could not be written "
                                        f"in {root}; {kept}. Free some space and rerun the same command to "
                                        "resume.") from e

        def _save_staged(self, model: Any, trial: Any, root: Path, step: int, staging: Path) -> None:
            """The Trainer writes into ``staging``; rank 0 completes the checkpoint and renames it into place."""
            self._staging = str(staging)
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self._staging = None
            self.accelerator.wait_for_everyone()  # every rank's files (its RNG state, DeepSpeed shards) are written
            if not self.args.should_save:  # rank 0 completes the checkpoint
                return
            written = staging / f"checkpoint-{step}"
            state = {"step": step, "prompts_seen": step * prompts_per_step, "saved_at": time.time(),
                     **self.extra_state()}
            (written / STATE_FILE).write_text(json.dumps(state))
            fsync_tree(written)
            final = root / f"checkpoint-{step}"
            if final.exists():  # the same step saved again (a stop signal on a save step)
                shutil.rmtree(final)
            os.replace(written, final)
            fsync_dir(root)
            shutil.rmtree(staging, ignore_errors=True)
            for old in checkpoints(root)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)

    AtomicCheckpoints.__name__ = AtomicCheckpoints.__qualname__ = trainer_cls.__name__
    return AtomicCheckpoints


class StopOnSignal:
    """While active, SIGTERM and SIGINT set :attr:`received` instead of killing the process; the training loop
    then saves a checkpoint at the end of the step and stops. Only installed from the main thread."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum).name
        for sig, handler in self._previous.items():  # a second signal is not caught again
            signal.signal(sig, handler)

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
