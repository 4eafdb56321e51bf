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
  the time, the commit of the code that wrote it (:func:`code_commit`; a resume with other code is refused
  unless told) and what the loop adds through ``extra_state`` (a curriculum's levels: :mod:`rlvr.train.feed`).
  A checkpoint without it is not complete (:func:`latest_checkpoint` ignores it); uploads to S3
  (infrastructure/scripts/s3_checkpoints.py) keep the same rule.
- **``data_state.json``** when training reads a stream (``data.streaming=true``): the stream's position after the
  last row the trainer consumed (:meth:`rlvr.data.streaming.StreamReader.state`). A resumed trainer starts the
  stream there instead of skipping the batches already seen by reading them again.

:class:`StopOnSignal` turns SIGTERM (a spot machine's two-minute notice) and SIGINT (Ctrl-C) into "save a
checkpoint at the end of this step, then stop" inside training, and into "stop now, keep the latest checkpoint"
outside it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, ClassVar

from rlvr import distributed
from rlvr.data.streaming import StreamReader
from rlvr.errors import DiskFull, Stopped, no_space
from rlvr.files import publish

STATE_FILE = "rlvr_state.json"
DATA_STATE_FILE = "data_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


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
    return int(read_state(path)["step"])


def read_state(path: str | Path) -> dict[str, Any]:
    """What a complete checkpoint's ``rlvr_state.json`` holds."""
    return json.loads((Path(path) / STATE_FILE).read_text())


@functools.lru_cache(maxsize=1)
def code_commit() -> str | None:
    """The commit of the code running: ``RLVR_COMMIT`` (set in the image built for a cloud machine, which has no
    ``.git``), else the git HEAD of the checkout this package runs from, else None (unknown)."""
    if os.environ.get("RLVR_COMMIT"):
        return os.environ["RLVR_COMMIT"]
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def checkpoint_state(step: int, prompts_seen: int) -> dict[str, Any]:
    """What ``rlvr_state.json`` holds: the step, the data position, the time and the commit of the code."""
    return {"step": step, "prompts_seen": prompts_seen, "saved_at": time.time(), "commit": code_commit()}


def checkpoint_commit(path: str | Path) -> str | None:
    """The commit of the code that wrote the checkpoint at ``path`` (None: written before commits were recorded)."""
    return read_state(path).get("commit")


def complete(written: Path, root: Path, step: int, prompts_seen: int, keep: int,
             extra: dict[str, Any] | None = None) -> Path:
    """Finish a checkpoint whose files are all in ``written`` (a staging directory): add ``rlvr_state.json`` (with
    ``extra``, JSON, beside the step and the data position), put it in place as ``root/checkpoint-<step>``
    (atomically, :func:`rlvr.files.publish`), then delete the checkpoints beyond the newest ``keep``."""
    (written / STATE_FILE).write_text(json.dumps({**checkpoint_state(step, prompts_seen), **(extra or {})}))
    final = root / f"checkpoint-{step}"
    publish(written, final)
    for old in checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def atomic_checkpoints(trainer_cls: type, keep: int, prompts_per_step: int, stream: StreamReader | None = None,
                       extra_state: Callable[[], dict[str, Any]] | None = None) -> type:
    """``trainer_cls`` (a transformers/TRL Trainer) whose checkpoints are written atomically, ``keep`` kept; with
    ``stream`` (the reader of its training stream), they hold the stream's position and resume from it; what
    ``extra_state`` returns (JSON) goes into each checkpoint's ``rlvr_state.json``, for its caller to restore."""

    class AtomicCheckpoints(trainer_cls):  # type: ignore[misc, valid-type]
        _staging: str | None = None
        _consumed: int = -1  # the last stream_index of the batches the trainer took (with ``stream``)
        _pending: deque  # the last stream_index of each batch collated and not yet taken (the loader reads ahead)

        def train(self, resume_from_checkpoint: str | None = None, **kwargs: Any) -> Any:
            if stream is not None and resume_from_checkpoint:
                stream.resume(json.loads((Path(resume_from_checkpoint) / DATA_STATE_FILE).read_text()))
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

        def get_resumed_dataloader(self, dataloader: Any, num_batches: int) -> Any:
            if stream is not None:
                return dataloader  # the stream starts after the checkpoint's last row: nothing to skip
            return super().get_resumed_dataloader(dataloader, num_batches)

        def _get_collator_with_removed_columns(self, data_collator: Callable, description: str | None = None
                                               ) -> Callable:
            collator = super()._get_collator_with_removed_columns(data_collator, description)
            if stream is None or description != "Training":
                return collator
            self._pending = deque()
            return _RecordIndex(collator, self._pending)

        def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> Any:
            batches, items = super().get_batch_samples(epoch_iterator, num_batches, device)
            if stream is not None:
                for _ in batches:
                    self._consumed = max(self._consumed, self._pending.popleft())
                stream.forget(self._consumed)
            return batches, items

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
            # Each rank took its slice of every global batch: the position is after the furthest row any rank took.
            consumed = max(distributed.gather(self._consumed)) if stream is not None else None
            if self.args.should_save:  # rank 0 completes the checkpoint
                written = staging / f"checkpoint-{step}"
                if consumed is not None:
                    (written / DATA_STATE_FILE).write_text(json.dumps(stream.state(consumed)))
                complete(written, root, step, step * prompts_per_step, keep, extra_state() if extra_state else None)
            # No rank goes on (or exits, when a signal stops the run) before the checkpoint is complete: a launcher
            # stops the other ranks once one has exited.
            self.accelerator.wait_for_everyone()
            shutil.rmtree(staging, ignore_errors=True)

    AtomicCheckpoints.__name__ = AtomicCheckpoints.__qualname__ = trainer_cls.__name__
    return AtomicCheckpoints


class _RecordIndex:
    """A data collator that first notes the last ``stream_index`` of the rows it collates (and takes the column
    out: the model and the reward functions never see it)."""

    def __init__(self, collator: Callable, pending: deque):
        self.collator, self.pending = collator, pending

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        self.pending.append(max(f.pop("stream_index") for f in features))
        return self.collator(features)


class StopOnSignal:
    """SIGTERM (a spot machine's notice, forwarded by the container's init or the job's machine) and SIGINT
    (Ctrl-C) stop the job with its work kept. Used at two levels:

    - around a whole job (``at_once=True``, by the entry point): a signal outside training (loading, evaluating,
      saving the model) raises :class:`~rlvr.errors.Stopped` at once; there is nothing to save there, the latest
      checkpoint stays the resume point;
    - around a training loop (the default): a signal only sets :attr:`received`; the loop saves a checkpoint at
      the end of the step and stops, every rank at the same step (:meth:`should_stop`).

    A job stops once: a repeated SIGTERM is ignored (a launcher forwards the one the machine got, so a rank may
    get it twice), a second SIGINT raises KeyboardInterrupt (Ctrl-C twice quits at once). Installed from the main
    thread only (elsewhere it does nothing).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)
    stopping: ClassVar[str | None] = None  # the signal this job is stopping on, shared by both levels

    def __init__(self, at_once: bool = False, run_dir: str = "") -> None:
        self.at_once, self.run_dir = at_once, run_dir
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if StopOnSignal.stopping is not None and signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)  # Ctrl-C again: quit now
        first = StopOnSignal.stopping is None
        StopOnSignal.stopping = StopOnSignal.stopping or name
        self.received = self.received or name
        if self.at_once and first:
            raise Stopped(name, None, self.run_dir)

    def should_stop(self) -> bool:
        """Whether to save and stop after this step: a signal reached this rank or any other. Every rank calls it
        at the end of each step, so all of them stop at the same one."""
        names = [n for n in distributed.gather(self.received) if n]
        self.received = self.received or (names[0] if names else None)
        StopOnSignal.stopping = StopOnSignal.stopping or self.received
        return self.received is not None

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            StopOnSignal.stopping = None  # nothing is stopping yet (a sweep's worker process runs several jobs)
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
