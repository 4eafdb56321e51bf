"""Sweeps on Hydra's launchers: parallel local jobs (joblib, ``hydra/launcher=local``) and Ray tasks on a local
Ray instance the launcher starts (``hydra/launcher=ray_cluster``), on a tiny model.

- Each job of a local sweep sees only its own share of the GPUs: with 4 (fake) devices and 2 jobs at once, each
  job's ``CUDA_VISIBLE_DEVICES`` holds 2 of them, and the two shares are disjoint; and runs on half the cores.
- A job that fails is recorded (its results.json and the summary carry its error line), the other jobs finish,
  and the command exits 1 naming it.
- After the sweep, ``summary.csv``, ``summary.md`` and ``accuracy.png`` are at its root.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from rlvr import devices
from tests.conftest import MULTIPROCESS, REPO
from tests.integration.test_resume import env

pytestmark = MULTIPROCESS

TINY = ["data.train_size=16", "data.test_size=4", "train.max_steps=1", "train.per_device_train_batch_size=4",
        "train.num_generations=4", "train.max_completion_length=8", "observers=none"]


def sweep(args: list[str], cwd: Path, **extra_env: str | None) -> subprocess.CompletedProcess:
    """The sweep on one thread per job unless told otherwise (a variable given as None is left unset)."""
    environment = {k: v for k, v in {**env(), "OMP_NUM_THREADS": "1", **extra_env}.items() if v is not None}
    return subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "-m", *TINY, *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600, env=environment)


def summary(root: Path) -> list[dict]:
    assert (root / "summary.md").is_file() and (root / "accuracy.png").is_file()
    with (root / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def test_local_jobs_get_their_own_gpus_and_a_failed_job_does_not_stop_the_others(tiny_model_dir, tmp_path):
    root = tmp_path / "sweep"
    proc = sweep(["hydra/launcher=local", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={root}",
                  f"model.name_or_path={tiny_model_dir},{tmp_path / 'no-such-model'}"], tmp_path,
                 CUDA_VISIBLE_DEVICES="10,11,12,13", OMP_NUM_THREADS=None)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 job(s) of the sweep failed" in proc.stderr and "no-such-model" in proc.stderr

    ok, failed = (json.loads((root / str(i) / "results.json").read_text())["run"] for i in (0, 1))
    assert ok["status"] == "success" and failed["status"] == "failed" and "no-such-model" in failed["error"]
    assert ok["threads"] == failed["threads"] == max(1, devices.cores() // 2)  # 2 jobs at once share the cores
    shares = [set(run["cuda_visible_devices"].split(",")) for run in (ok, failed)]
    assert all(len(s) == 2 for s in shares) and not shares[0] & shares[1]
    assert shares[0] | shares[1] == {"10", "11", "12", "13"}

    rows = summary(root)
    assert [r["status"] for r in rows] == ["success", "failed"]
    assert "no-such-model" in rows[1]["error"] and rows[0]["accuracy"] != ""
    assert "1 failed: see the error column below" in (root / "summary.md").read_text()


def test_a_sweep_runs_as_ray_tasks_on_a_local_ray_instance(tiny_model_dir, tmp_path):
    root = tmp_path / "sweep"
    proc = sweep(["hydra/launcher=ray_cluster", "+hydra.launcher.ray.init.num_cpus=2",
                  "+hydra.launcher.ray.init.include_dashboard=false", "hydra.launcher.ray.remote.num_cpus=1",
                  f"model.name_or_path={tiny_model_dir}", "train.learning_rate=1e-3,1e-2",
                  f"hydra.sweep.dir={root}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job in ("0", "1"):
        results = json.loads((root / job / "results.json").read_text())
        assert results["run"]["status"] == "success" and results["train"]["global_step"] == 1
    rows = summary(root)
    assert [r["train.learning_rate"] for r in rows] == ["0.001", "0.01"]
    assert all(r["status"] == "success" for r in rows)
