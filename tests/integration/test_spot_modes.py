"""The stop signal in every run mode, through the container's entry: infrastructure/scripts/run.sh under the image's
init (dumb-init) as PID 1 of its own PID namespace (tests/integration/fake_docker.py), signalled the way Docker
does it (SIGTERM to PID 1), on a tiny model whose reward takes a second a step.

- A -m sweep on one machine (joblib's worker processes, not children of run.sh): the running jobs save a checkpoint
  and stop; the job still queued does not start.
- accelerate with two processes (``nvidia-smi`` here says there are two GPUs; on CPU, accelerate runs them over
  gloo): both ranks stop at the same step with one complete checkpoint holding both ranks' state, and the elastic
  agent waits RLVR_STOP_GRACE_S for them, not torch's 30 s.
- A job that is a Ray task: signalled as run.sh signals a worker's jobs, it saves a checkpoint and its process
  exits, so Ray runs it again, and the retry resumes from that checkpoint and finishes with every step once.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import MULTIPROCESS, REPO, read_jsonl, tiny_overrides
from tests.integration.test_resume import env, wait_for

pytestmark = MULTIPROCESS

SLOW = ["+reward.functions.slow={_target_:tests.integration.slow_reward.slow_variety,_partial_:true}",
        "reward.isolation=thread"]


def tiny(model_dir: Path, steps: int) -> list[str]:
    drop = ("output_dir", "train.max_steps", "observers")
    return [*(o for o in tiny_overrides(model_dir, Path(".")) if not o.startswith(drop)), f"train.max_steps={steps}",
            "train.save_steps=2", "observers=none", "+observers.jsonl={_target_:rlvr.observers.JsonlObserver}", *SLOW]


class Container:
    """run.sh in a fake container (the single role's options, as boot.sh renders them)."""

    def __init__(self, root: Path, args: list[str], gpus: int = 0):
        self.root, self.outputs = root, root / "outputs"
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True)
        if gpus:  # nvidia-smi -L: one line per GPU
            (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {i}: fake'\n" for i in range(gpus)))
            (bin_dir / "nvidia-smi").chmod(0o755)
        (root / "secrets").mkdir()
        (root / "secrets" / "secrets.env").write_text("")
        self.env = {**env(), "OMP_NUM_THREADS": "1", "FAKE_DOCKER_STATE": str(root / "docker"),
                    "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "RLVR_OUTPUTS": str(self.outputs), "RLVR_RUN_NAME": "run",
                    "RLVR_SECRETS_DIR": str(root / "secrets"), "RLVR_ACCELERATE": "ddp",
                    "RLVR_RUN_ARGS_B64": base64.b64encode(" ".join(args).encode()).decode()}
        options = subprocess.run(["bash", str(REPO / "infrastructure/scripts/boot.sh"), "--run-options", "single"],
                                 env=self.env, capture_output=True, text=True, check=True).stdout.splitlines()
        docker = [sys.executable, str(REPO / "tests/integration/fake_docker.py")]
        subprocess.run([*docker, "build", "--build-arg", "RLVR_COMMIT=test", "."], env=self.env, check=True)
        self.log = (root / "container.log").open("w")
        self.proc = subprocess.Popen([*docker, "run", *options, "rlvr:test", "bash", "infrastructure/scripts/run.sh"],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.docker = docker

    @property
    def run_dir(self) -> Path:
        return self.outputs / "run"

    def stop(self) -> None:
        """``docker kill --signal TERM``: SIGTERM to the container's PID 1."""
        subprocess.run([*self.docker, "kill", "--signal", "TERM", "rlvr"], env=self.env, check=True)

    def wait(self, timeout: float = 300) -> tuple[int, str]:
        status = self.proc.wait(timeout=timeout)
        self.log.close()
        return status, (self.root / "container.log").read_text()


def steps_logged(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [r["step"] for r in (json.loads(line) for line in path.read_text().splitlines() if line.endswith("}"))
            if r.get("event") == "train"]


def complete(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("checkpoint-*/rlvr_state.json"))


def test_a_sweep_on_one_machine_stops_its_running_jobs_and_starts_no_other(tiny_model_dir, tmp_path):
    args = ["-m", *tiny(tiny_model_dir, 6), f"model.name_or_path={tiny_model_dir}", "hydra.launcher.n_jobs=2",
            "train.learning_rate=1e-3,1e-2,5e-2"]
    box = Container(tmp_path, args)
    jobs = [box.run_dir / str(i) for i in range(3)]
    wait_for(lambda: all(steps_logged(j) for j in jobs[:2]), box.proc, timeout=300)  # both workers are training
    box.stop()
    status, log = box.wait()
    assert status != 0, log[-3000:]
    for job in jobs[:2]:  # each running job finished its step, saved it and stopped
        results = json.loads((job / "results.json").read_text())["run"]
        assert results["status"] == "stopped" and "stopped by SIGTERM at step" in results["stopped"], results
        assert complete(job) and max(steps_logged(job)) < 6
    assert not steps_logged(jobs[2])  # the queued job did not start training
    assert "2 job(s) of the sweep failed" in log or "3 job(s) of the sweep failed" in log, log[-3000:]


def test_accelerate_ranks_stop_together_and_the_agent_waits_for_them(tiny_model_dir, tmp_path):
    box = Container(tmp_path, tiny(tiny_model_dir, 8), gpus=2)
    wait_for(lambda: steps_logged(box.run_dir), box.proc, timeout=300)
    agent = next(p for p in processes() if b"accelerate" in cmdline(p) and b"launch" in cmdline(p))
    environ = dict(e.split(b"=", 1) for e in Path(f"/proc/{agent}/environ").read_bytes().split(b"\0") if b"=" in e)
    assert environ[b"TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] == b"60"  # RLVR_STOP_GRACE_S, not torch's 30 s
    box.stop()
    status, log = box.wait()
    assert status != 0 and "Stopped by SIGTERM at step" in log, log[-3000:]
    (marker,) = complete(box.run_dir)[-1:]
    step = json.loads(marker.read_text())["step"]
    assert step < 8 and sorted(p.name for p in marker.parent.glob("rng_state_*.pth")) == [
        "rng_state_0.pth", "rng_state_1.pth"]  # both ranks' state, in the one checkpoint of the stop step
    assert steps_logged(box.run_dir)[-1] == step  # no rank went on past the step the checkpoint holds
    results = json.loads((box.run_dir / "results.json").read_text())["run"]
    assert results["status"] == "stopped" and results["world_size"] == 2


def processes() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_ray_task_stopped_by_the_signal_is_retried_and_resumes(tiny_model_dir, tmp_path):
    jobs_dir = tmp_path / "jobs"
    root = tmp_path / "sweep"
    args = [sys.executable, str(REPO / "run_pipeline.py"), "-m", *tiny(tiny_model_dir, 6),
            f"model.name_or_path={tiny_model_dir}", "hydra/launcher=ray_cluster", "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false", "hydra.launcher.ray.remote.num_cpus=1",
            "hydra.launcher.ray.remote.num_gpus=0", f"hydra.sweep.dir={root}"]
    with (tmp_path / "sweep.log").open("w") as out:
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                env={**env(), "OMP_NUM_THREADS": "1", "RLVR_JOBS_DIR": str(jobs_dir)})
        job = root / "0"
        wait_for(lambda: 2 in steps_logged(job) and any(p.name.isdigit() for p in jobs_dir.glob("*")), proc,
                 timeout=300)
        (task,) = [int(p.name) for p in jobs_dir.glob("*") if p.name.isdigit()]
        os.kill(task, signal.SIGTERM)  # what run.sh --ray-worker sends each of its jobs
        wait_for(lambda: not Path(f"/proc/{task}/stat").exists() or b" Z " in Path(f"/proc/{task}/stat").read_bytes(),
                 proc, timeout=120)
        assert proc.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    log = (tmp_path / "sweep.log").read_text()
    assert "its Ray worker exits so that Ray retries it" in log, log[-3000:]
    results = json.loads((job / "results.json").read_text())
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 6
    assert results["train"]["resumed_from_step"] >= 2  # the retry continued from the stop's checkpoint
    steps = [r["step"] for r in read_jsonl(job / "metrics.jsonl") if r["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6], steps
