"""Where the reward functions and the shared scoring run, and how a call that overruns its time limit is stopped.

:class:`Processes` (``reward.isolation=process``, the default) runs them in a pool of worker processes:

- The functions and the scorer are sent to the workers once, when the pool starts (pickled), so a call sends
  only its batch: one round trip per batch.
- A call that exceeds its time limit is killed with its workers (SIGKILL, so one that holds the interpreter lock
  or is stuck in C code stops all the same), and a fresh pool replaces them before the call returns.
- Workers are started by a ``forkserver`` (``spawn`` where there is none), never forked from the training
  process: they hold no model, no CUDA state and none of its threads. A worker ignores Ctrl-C (the training
  process stops it), exits when the training process is gone (even killed outright), and the training process
  logs its warnings.
- A worker that dies (a crash in C code, the out-of-memory killer) is replaced like one that was killed; only
  the call it was running fails.
- A worker holds a copy of each function: state a function keeps between calls stays in the worker, is not seen
  by the training process, and is lost when the worker is replaced.
- If the pool cannot be started again after a kill, calls run in threads (:class:`Threads`) from then on, with a
  warning.

:class:`Threads` (``reward.isolation=thread``, and what cannot be sent to a worker) runs each call in a daemon
thread of the training process. A call that overruns is abandoned, since Python cannot kill a thread: one that
waits (sleep, I/O) no longer holds up training, one that computes holding the interpreter lock still does.

Both run tasks ``(kind, name, first, second)``: ``("score", "", texts, columns)`` scores a batch with the
scorer; ``("reward", name, completions, kwargs)`` calls reward function ``name`` and checks what it returns.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rlvr.interfaces import RewardOutput

log = logging.getLogger(__name__)
FAILED = "failed"
Task = tuple[str, str, Any, Any]
SCORER = ("score", "")


def execute(objects: dict[tuple[str, str], Any], kind: str, name: str, first: Any, second: Any) -> Any:
    """Run one task with ``objects`` (``{(kind, name): scorer or function}``): Scores, or checked reward values."""
    obj = objects[(kind, name)]
    if kind == "score":
        return obj.score_batch(first, second)
    return check(obj(first, **second), len(first))


def check(values: Any, n: int) -> list[Any] | RewardOutput:
    """Floats or None, one per completion; a non-finite value marks that sample failed. A
    :class:`~rlvr.interfaces.RewardOutput` keeps its metrics (those that are finite numbers)."""
    if isinstance(values, RewardOutput):
        metrics = {str(k): float(v) for k, v in values.metrics.items() if math.isfinite(float(v))}
        return RewardOutput(check(values.values, n), metrics)
    values = list(values)
    if len(values) != n:
        raise ValueError(f"returned {len(values)} values for {n} completions")
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        f = float(v)
        out.append(f if math.isfinite(f) else FAILED)
    return out


class Threads:
    """Each call in its own daemon thread of this process; one that overruns is abandoned."""

    def __init__(self, objects: dict[tuple[str, str], Any]):
        self.objects = objects

    def run(self, task: Task, timeout_s: float) -> Any:
        """The task's result; raises what it raised, or TimeoutError after ``timeout_s``."""
        return _Call(self.objects, task).result(time.monotonic() + timeout_s, timeout_s)

    def run_each(self, tasks: list[Task], timeout_s: float) -> list[Any]:
        """Every task at once under one shared deadline; each result, or the exception it ended with."""
        deadline = time.monotonic() + timeout_s
        calls = [_Call(self.objects, task) for task in tasks]
        out: list[Any] = []
        for call in calls:
            try:
                out.append(call.result(deadline, timeout_s))
            except Exception as e:  # noqa: BLE001 - handed back to the caller, which counts it
                out.append(e)
        return out

    def close(self) -> None:
        """Nothing to stop: a call still running is a daemon thread."""


class _Call:
    """One task in a daemon thread: a call that never returns is abandoned without holding up any later call."""

    def __init__(self, objects: dict[tuple[str, str], Any], task: Task):
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(objects, task), daemon=True, name="reward")
        self._thread.start()

    def _run(self, objects: dict[tuple[str, str], Any], task: Task) -> None:
        try:
            self._value = execute(objects, *task)
        except BaseException as e:  # noqa: BLE001 - even SystemExit from a user function is only a failure
            self._error = e

    def result(self, deadline: float, timeout_s: float) -> Any:
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            raise TimeoutError(f"took longer than reward.timeout_s={timeout_s}")
        if self._error is not None:
            if isinstance(self._error, Exception):
                raise self._error
            raise RuntimeError(f"{type(self._error).__name__}: {self._error}")
        return self._value


class Processes:
    """A pool of ``workers`` processes holding copies of ``objects``; a call that overruns is killed with them.

    Args:
        objects: ``{(kind, name): pickled object}``, each already pickled (so what cannot be pickled was found out
            before, and runs elsewhere).
        workers: processes in the pool. A batch takes one; a batch retried sample by sample spreads over all.
        fallback: where calls run if the pool cannot be started again after a kill.
        start_timeout_s: how long starting the workers (and loading the objects into them) may take.
    """

    def __init__(self, objects: dict[tuple[str, str], bytes], workers: int, fallback: Threads,
                 start_timeout_s: float = 120.0):
        self._payload = pickle.dumps(objects)
        self.workers, self.fallback, self.start_timeout_s = workers, fallback, start_timeout_s
        methods = multiprocessing.get_all_start_methods()
        self._context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        self._executor: ProcessPoolExecutor | None = None  # None once it cannot be started again: the fallback runs

    def start(self) -> dict[tuple[str, str], str]:
        """Start the workers and wait until each has loaded the objects. Returns ``{key: why}`` for each object
        a worker could not load (those must run elsewhere); raises if the workers cannot start."""
        if multiprocessing.get_start_method(allow_none=True) not in multiprocessing.get_all_start_methods():
            # A job of Hydra's joblib launcher (hydra/launcher=local) runs in a loky worker, whose start method is
            # "loky". A new child is told to take its parent's start method before anything else, and plain Python
            # does not know "loky": every worker died at start and the rewards fell back to threads.
            multiprocessing.set_start_method(self._context.get_start_method(), force=True)
        executor = ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_init_worker,
                                       initargs=(self._payload,))
        deadline = time.monotonic() + self.start_timeout_s
        try:
            futures = [executor.submit(_ready) for _ in range(self.workers)]  # one each: every worker starts now
            unloadable = [f.result(max(0.0, deadline - time.monotonic())) for f in futures][0]
        except BaseException:
            _kill(executor)
            raise
        self._executor = executor
        return unloadable

    def run(self, task: Task, timeout_s: float) -> Any:
        """The task's result; raises what it raised, or TimeoutError after ``timeout_s`` (the call is killed)."""
        if self._executor is None:
            return self.fallback.run(task, timeout_s)
        future = self._submit(task)
        try:
            value, records = future.result(timeout_s)
        except BrokenProcessPool:
            self._replace("a worker process died")
            raise RuntimeError("its worker process died (killed from outside, or a crash in C code)") from None
        except TimeoutError:
            if future.done():  # the function's own TimeoutError
                raise
            self._replace(f"a call took longer than reward.timeout_s={timeout_s}")
            raise TimeoutError(f"took longer than reward.timeout_s={timeout_s}; its worker was killed") from None
        _relay(records)
        return value

    def run_each(self, tasks: list[Task], timeout_s: float) -> list[Any]:
        """The tasks spread over the workers under one shared deadline; each result, or the exception it ended
        with. Tasks not finished by the deadline (running, or waiting behind ones that hang) are killed. A worker
        that dies fails every task still pending in the pool: those are run again one at a time, so only the
        task that kills its worker fails."""
        if self._executor is None:
            return self.fallback.run_each(tasks, timeout_s)
        deadline = time.monotonic() + timeout_s
        futures: list[Future | Exception] = []
        for task in tasks:
            try:
                futures.append(self._submit(task))
            except Exception as e:  # noqa: BLE001 - no workers to run it: that task fails
                futures.append(e)
        wait([f for f in futures if isinstance(f, Future)], timeout_s)
        out: list[Any] = []
        again: list[int] = []
        overran = False
        for i, future in enumerate(futures):
            if isinstance(future, Exception):
                out.append(future)
            elif not future.done():
                overran = True
                out.append(TimeoutError(f"not done within reward.timeout_s={timeout_s}; killed"))
            elif isinstance(future.exception(), BrokenProcessPool):
                out.append(None)
                again.append(i)
            elif future.exception() is not None:
                out.append(future.exception())
            else:
                value, records = future.result()
                _relay(records)
                out.append(value)
        if overran or again:
            self._replace("calls took longer than reward.timeout_s" if overran else "a worker process died")
        for i in again:
            left = deadline - time.monotonic()
            if left <= 0:
                out[i] = TimeoutError(f"not done within reward.timeout_s={timeout_s}")
                continue
            try:
                out[i] = self.run(tasks[i], left)
            except Exception as e:  # noqa: BLE001 - handed back to the caller, which counts it
                out[i] = e
        return out

    def _submit(self, task: Task) -> Future:
        """Hand ``task`` to the pool; a pool broken while idle (a worker killed from outside, by the kernel's
        out-of-memory killer say) is replaced first."""
        if self._executor is None:
            raise RuntimeError("the worker processes could not be started again")
        try:
            return self._executor.submit(_work, *task)
        except BrokenProcessPool:
            self._replace("a worker process died between calls")
            if self._executor is None:
                raise RuntimeError("the worker processes could not be started again") from None
            return self._executor.submit(_work, *task)

    def _replace(self, why: str) -> None:
        """Kill every worker and start fresh ones; if that fails, calls run in threads from then on."""
        if self._executor is not None:
            _kill(self._executor)
            self._executor = None
        log.warning("reward workers: %s; worker processes killed and replaced", why)
        try:
            self.start()
        except Exception as e:  # noqa: BLE001 - training goes on in threads
            log.warning("reward workers could not be started again (%s: %s): reward functions and scoring run in "
                        "threads of the training process from now on, where a call that hangs holding the "
                        "interpreter lock cannot be stopped", type(e).__name__, e)

    def close(self) -> None:
        """Stop the workers (killed: none holds anything worth waiting for) and wait until they are gone."""
        if self._executor is not None:
            _kill(self._executor)
            self._executor = None


def _kill(executor: ProcessPoolExecutor) -> None:
    """SIGKILL every worker of ``executor``, then shut it down (its threads and processes joined)."""
    kill_workers = getattr(executor, "kill_workers", None)  # Python 3.14+
    if kill_workers is not None:
        kill_workers()
    else:  # before 3.14 the pool's processes are only reachable through this attribute
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
    executor.shutdown(wait=True, cancel_futures=True)


# --- inside a worker process -----------------------------------------------------------------------------------
_OBJECTS: dict[tuple[str, str], Any] = {}
_UNLOADABLE: dict[tuple[str, str], str] = {}
_RECORDS: list[tuple[str, int, str]] = []


class _Collect(logging.Handler):
    """Keeps a worker's warnings, to be logged by the training process (the worker has no log file)."""

    def emit(self, record: logging.LogRecord) -> None:
        _RECORDS.append((record.name, record.levelno, record.getMessage()))


def _init_worker(payload: bytes) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # a training process killed outright (SIGKILL, out of memory) must not leave us behind
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()
    logging.getLogger().addHandler(_Collect(logging.WARNING))
    for key, blob in pickle.loads(payload).items():
        try:
            _OBJECTS[key] = pickle.loads(blob)
        except Exception as e:  # noqa: BLE001 - e.g. a function defined in an interactive __main__
            _UNLOADABLE[key] = f"{type(e).__name__}: {e}"


def _exit_with(parent: Any) -> None:
    parent.join()  # returns when the training process is gone
    os._exit(0)


def _ready() -> dict[tuple[str, str], str]:
    return dict(_UNLOADABLE)


def _work(kind: str, name: str, first: Any, second: Any) -> tuple[Any, list[tuple[str, int, str]]]:
    _RECORDS.clear()
    try:
        value = execute(_OBJECTS, kind, name, first, second)
    except Exception:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit from a user function is only a failure
        raise RuntimeError(f"{type(e).__name__}: {e}") from None
    return value, list(_RECORDS)


def _relay(records: list[tuple[str, int, str]]) -> None:
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s (in a reward worker)", message)
