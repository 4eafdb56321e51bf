"""Each worker of a local (joblib) sweep claims its own share of the GPUs (fake device ids: no GPU needed), and
each job of a sweep its share of the CPU cores."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from rlvr import devices
from tests.conftest import compose


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(devices, "_claimed", {})
    monkeypatch.delenv("RLVR_ALL_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")


def test_a_worker_takes_the_first_free_share_and_keeps_it(fresh, tmp_path, monkeypatch):
    with open(tmp_path / "slot-0.lock", "w") as taken:  # another worker holds the first share
        fcntl.flock(taken, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert devices.claim(2, tmp_path) == ["6", "7"]
    assert devices.visible() == ["6", "7"]
    assert devices.claim(2, tmp_path) == ["6", "7"]  # its next job: the same share (CUDA cannot switch)


def test_shares_in_separate_processes_are_disjoint(fresh, tmp_path):
    code = "import sys; from rlvr import devices; print(','.join(devices.claim(4, sys.argv[1]))); input()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    shares = [p.stdout.readline().strip() for p in procs]  # all four alive at once, each holding its lock
    for p in procs:
        p.communicate("\n")
    assert sorted(shares) == ["4", "5", "6", "7"]


def test_more_jobs_than_gpus_is_refused_with_what_to_do(fresh, tmp_path):
    with pytest.raises(RuntimeError, match="lower hydra.launcher.n_jobs"):
        devices.claim(8, tmp_path)


def test_without_gpus_nothing_changes(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devices.claim(2, tmp_path) == [] and devices.parallel_jobs() == 1 and devices.gpus_per_job() == 0


@pytest.mark.parametrize("launcher, target, key, value", [
    ("local", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs", 4),
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "gpus_per_node", 1),
    ("ray_cluster", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher", "ray.remote.num_gpus", 1),
])
def test_each_shipped_launcher_composes_onto_its_plugin(fresh, launcher, target, key, value):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    from rlvr.config import register_resolvers

    register_resolvers()
    with initialize_config_module("rlvr.conf", version_base=None):
        cfg = hydra_compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    node = cfg.hydra.launcher
    assert node._target_ == target and OmegaConf.select(node, key) == value
    assert compose() is not None  # the job's own config is untouched by the launcher choice


@pytest.fixture
def threads(monkeypatch):
    """torch's thread count and the thread variables, put back after the test."""
    import torch

    before = torch.get_num_threads()
    for var in devices.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    yield torch
    torch.set_num_threads(before)


def test_a_job_runs_on_its_share_of_the_cores(threads, monkeypatch):
    assert devices.share_cores(3) == 3 and threads.get_num_threads() == 3
    assert [os.environ[v] for v in devices.THREAD_VARS] == ["3", "3"]  # for the processes it starts
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert devices.share_cores(0) == 1  # more jobs than cores: one thread each


def test_threads_set_by_hand_win(threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert devices.share_cores(8) == 2 and threads.get_num_threads() == 2


def test_joblib_job_counts():
    assert devices.concurrent_jobs(3) == 3
    assert devices.concurrent_jobs(-1) == devices.cores() and devices.concurrent_jobs(-2) == max(1, devices.cores() - 1)
