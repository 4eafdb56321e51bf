"""Which GPUs and how many CPU threads a job of a sweep may use.

Ray (``hydra/launcher=ray_cluster``: ``num_gpus`` per task) and SLURM (``slurm``: ``gpus_per_node``) give each job
its own devices and set ``CUDA_VISIBLE_DEVICES`` themselves. Joblib (``hydra/launcher=local``) runs the jobs in
``n_jobs`` worker processes that all see every GPU, so each worker claims a share of them before its first job
touches CUDA: the visible devices split in ``n_jobs`` slots, a slot held by an exclusive lock on
``<sweep dir>/.devices/slot-<k>.lock`` for the worker's life (a worker runs several jobs one after another, and
CUDA cannot change devices once started), then ``CUDA_VISIBLE_DEVICES`` set to that slot's devices.

Jobs side by side also share the CPU cores (:func:`share_cores`): torch would otherwise start a thread per core
in every job, and jobs that oversubscribe the cores slow each other down many times over. Each job gets
``cores / parallel jobs`` threads (joblib: ``n_jobs`` at once; Ray: the CPUs its task reserved), unless
``OMP_NUM_THREADS`` was set by hand.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # what OpenMP and MKL (torch's CPU kernels) read at start
_claimed: dict[str, object] = {}  # this process's slot: its lock file stays open (and locked) while it lives


def visible() -> list[str]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else every GPU torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def parallel_jobs() -> int:
    """Jobs a local launcher runs at once by default: one per visible GPU (one without GPUs)."""
    return max(1, len(visible()))


def gpus_per_job(default: int = 1) -> int:
    """GPUs a Ray task asks for: ``default`` when there are GPUs, 0 on a machine without (or it never starts)."""
    return default if visible() else 0


def claim(slots: int, lock_dir: str | Path) -> list[str]:
    """Give this process one of ``slots`` equal shares of the visible devices (the first free one, held until the
    process ends) and restrict ``CUDA_VISIBLE_DEVICES`` to it; returns the share. A process that claimed before
    keeps its share; with no devices, or one slot, nothing changes."""
    if "devices" in _claimed:
        return list(_claimed["devices"])  # type: ignore[arg-type]
    devices = os.environ.get("RLVR_ALL_DEVICES")
    devices = devices.split(",") if devices else visible()
    if slots <= 1 or not devices:
        return devices
    if len(devices) < slots:
        raise RuntimeError(f"{slots} jobs at once need at least {slots} GPUs, {len(devices)} are visible: lower "
                           "hydra.launcher.n_jobs.")
    per = len(devices) // slots
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    for k in range(slots):
        handle = open(lock_dir / f"slot-{k}.lock", "w")  # noqa: SIM115 - held open for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        share = devices[k * per:(k + 1) * per]
        _claimed.update(lock=handle, devices=share)
        os.environ["RLVR_ALL_DEVICES"] = ",".join(devices)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(share)
        return share
    raise RuntimeError(f"All {slots} device slots under {lock_dir} are taken: more worker processes than "
                       "hydra.launcher.n_jobs?")


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def concurrent_jobs(n_jobs: int) -> int:
    """Jobs joblib runs at once for ``n_jobs`` (joblib's meaning: -1 is one per core, -2 all cores but one)."""
    return n_jobs if n_jobs > 0 else max(1, cores() + 1 + n_jobs)


def share_cores(threads: int) -> int:
    """Run this job on ``threads`` CPU threads (at least one): torch's, and those of the processes it starts
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``). ``OMP_NUM_THREADS`` set by hand wins (joblib's and Ray's workers
    inherit it). Returns the threads used."""
    import torch

    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    threads = int(given) if given.isdigit() and int(given) > 0 else max(1, threads)
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    return threads
