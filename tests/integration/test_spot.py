"""Spot machines, for real but without AWS: infrastructure/scripts/boot.sh (the host) and run.sh (the container) run
against an S3 server started here on localhost (moto's), a fake instance metadata service that sends the spot
interruption notice when the test says so, and a fake ``docker`` whose containers are PID namespaces with the
image's init (dumb-init) as PID 1 (tests/integration/fake_docker.py). A "machine" is a clean directory.

- Machine 1 gets the notice at a random point (while loading, after a random step, or while a checkpoint is being
  uploaded): the pipeline stops within the budget, and what S3 holds is complete.
- Machine 2 restores from S3 and resumes; it is killed outright (everything, SIGKILL) while uploading a new
  checkpoint: S3 keeps that checkpoint invisible (no marker) and the one before intact.
- Machine 3 restores the newest complete checkpoint and finishes: the run ends at its planned final step with
  every step logged exactly once, nothing lost or repeated.

The S3 server delays checkpoint uploads (0.7 s a request) so that "during the upload" is a window the test can hit.
The sweep and multi-process cases run the container's entry the same way (tests/integration/test_spot_modes.py).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl, tiny_overrides
from tests.integration.test_resume import env, wait_for

BUCKET = "rlvr-outputs-test"
RUN = "spot-run"
SECRET = {"WANDB_API_KEY": "s3cr3t-'quoted' $(not run) `value`"}
STEPS = 12  # machine 1 stops by step 8 at the latest, even on a loaded machine (the upload seen may be the second
# checkpoint's): machine 2 then still writes a checkpoint before its last step


class SlowUploads:
    """WSGI middleware over moto: each request writing a checkpoint's temporary upload prefix waits ``delay`` s;
    ``started`` records the keys of those requests."""

    def __init__(self, app):
        self.app, self.delay, self.started = app, 0.7, []

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] in ("PUT", "POST") and ".upload/" in path:
            self.started.append(path)
            time.sleep(self.delay)
        return self.app(environ, start_response)


class Metadata(BaseHTTPRequestHandler):
    """IMDSv2: a token, then ``spot/instance-action``: 404 until the server's ``notice`` is set."""

    def do_PUT(self):
        self._reply(200, "token")

    def do_GET(self):
        ends = self.server.notice
        if self.path.endswith("/spot/instance-action") and ends is not None:
            self._reply(200, json.dumps({"action": "terminate", "time": ends.strftime("%Y-%m-%dT%H:%M:%SZ")}))
        else:
            self._reply(404, "Not Found")

    def _reply(self, code, body):
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def cloud():
    """An S3 and Secrets Manager server (moto) with the bucket and a secret, and the instance metadata service."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args):
            pass

    slow = SlowUploads(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, slow, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    metadata = ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    metadata.notice = None
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    aws = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    cli(aws, "s3", "mb", f"s3://{BUCKET}")
    arn = json.loads(cli(aws, "secretsmanager", "create-secret", "--name", "rlvr-keys", "--secret-string",
                         json.dumps(SECRET)))["ARN"]
    yield {"aws": aws, "secret_arn": arn, "slow": slow, "metadata": metadata}
    server.shutdown()
    metadata.shutdown()


def aws_cli() -> str:
    beside = Path(sys.executable).with_name("aws")  # the dev extra's awscli, in this environment
    return str(beside) if beside.exists() else shutil.which("aws")


def cli(aws: dict[str, str], *args: str) -> str:
    proc = subprocess.run([aws_cli(), *args], capture_output=True, text=True, env={**os.environ, **aws}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def s3_objects(aws: dict[str, str]) -> dict[str, int]:
    out = cli(aws, "s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", f"{RUN}/", "--output", "json")
    return {o["Key"][len(RUN) + 1:]: o["Size"] for o in (json.loads(out).get("Contents") or [])} if out else {}


def complete_checkpoints(objects: dict[str, int]) -> list[int]:
    return sorted(int(k.split("/")[1].split("-")[1]) for k in objects
                  if k.startswith("checkpoints/checkpoint-") and k.endswith("/rlvr_state.json"))


def assert_no_half_checkpoint(objects: dict[str, int], local_reference: Path | None = None) -> None:
    """Every checkpoint S3 shows (one with its marker) has every file a checkpoint has, at the size written."""
    for step in complete_checkpoints(objects):
        files = {k.split("/", 2)[2]: v for k, v in objects.items() if k.startswith(f"checkpoints/checkpoint-{step}/")}
        assert {"model.safetensors", "optimizer.pt", "rng_state.pth", "trainer_state.json"} <= set(files), files
        assert all(size > 0 for name, size in files.items() if name != "README.md"), files


class Machine:
    """One machine: a clean directory, boot.sh started in its own session with the fakes on its PATH."""

    def __init__(self, root: Path, cloud: dict, model_dir: Path, commit: str):
        self.root, self.cloud = root, cloud
        (root / "bin").mkdir(parents=True)
        docker = root / "bin" / "docker"
        docker.write_text(f"#!/bin/sh\nexec {sys.executable} {REPO / 'tests/integration/fake_docker.py'} \"$@\"\n")
        docker.chmod(0o755)
        overrides = [o for o in tiny_overrides(model_dir, root) if not o.startswith(("output_dir", "train.max_steps",
                                                                                    "observers"))]
        args = " ".join([*overrides, f"train.max_steps={STEPS}", "train.save_steps=2", "observers=none",
                         "+observers.jsonl={_target_:rlvr.observers.JsonlObserver}",
                         "+reward.functions.slow={_target_:tests.integration.slow_reward.slow_variety,_partial_:true}",
                         "reward.isolation=thread"])
        self.outputs = root / "outputs"
        self.env = {**env(), **cloud["aws"], "OMP_NUM_THREADS": "1",
                    "PATH": f"{root / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "FAKE_DOCKER_STATE": str(root / "docker"), "RLVR_ROLE": "single", "RLVR_BUCKET": BUCKET,
                    "RLVR_RUN_NAME": RUN, "RLVR_OUTPUTS": str(self.outputs), "RLVR_COMMIT": commit,
                    "RLVR_RUN_ARGS_B64": base64.b64encode(args.encode()).decode(),
                    "RLVR_SECRET_ARNS": cloud["secret_arn"], "RLVR_SECRETS_DIR": str(root / "run"),
                    "RLVR_IMDS": f"http://127.0.0.1:{cloud['metadata'].server_port}", "RLVR_POLL_S": "1",
                    "RLVR_PUSH_EVERY_S": "1"}
        self.log = (root / "boot.log").open("w")
        self.proc = subprocess.Popen(["bash", str(REPO / "infrastructure/scripts/boot.sh")], env=self.env, cwd=root,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def run_dir(self) -> Path:
        return self.outputs / RUN

    def logged_steps(self) -> list[int]:
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
        return [r["step"] for r in lines if r.get("event") == "train"]

    def wait(self, timeout: float = 300) -> int:
        status = self.proc.wait(timeout=timeout)
        self.log.close()
        return status

    def output(self) -> str:
        return (self.root / "boot.log").read_text()

    def kill_everything(self) -> None:
        """The machine vanishes: every process it started, SIGKILL, at once."""
        while True:
            alive = [p for p in descendants(self.proc.pid) if running(p)]
            if self.proc.poll() is None:
                alive.append(self.proc.pid)
            if not alive:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.log.close()


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*") if Path(f"/proc/{pid}").exists() else []:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def local_checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*")
                  if (p / "rlvr_state.json").is_file())


def notice(cloud: dict, seconds: int = 120) -> None:
    cloud["metadata"].notice = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()


def test_a_spot_run_survives_notices_and_a_machine_lost_mid_upload(cloud, tiny_model_dir, tmp_path):
    rng = random.Random()
    point = rng.choice(["loading", "step", "upload"])
    cloud["slow"].started.clear()
    commit = git_commit()

    # Machine 1: the notice at a random point.
    one = Machine(tmp_path / "one", cloud, tiny_model_dir, commit)
    if point == "loading":
        wait_for(lambda: (one.root / "docker" / "rlvr.pid").exists(), one.proc, timeout=120)
    elif point == "step":
        step = rng.randint(1, 3)  # the stop comes a step or two later: machine 2 has checkpoints to write
        wait_for(lambda: step in one.logged_steps(), one.proc, timeout=240)
    else:  # the first upload, of checkpoint 2 or (the push comes each second and takes the newest) checkpoint 4
        wait_for(lambda: cloud["slow"].started, one.proc, timeout=240)
    noticed = time.monotonic()
    notice(cloud)
    assert one.wait() == 143, one.output()[-3000:]
    took = time.monotonic() - noticed
    cloud["metadata"].notice = None
    log = one.output()
    assert "spot interruption notice: stopping the pipeline" in log and "the pipeline stopped after" in log, log
    assert "did not stop within" not in log and took < 120 - 10, log  # within the notice, step finished, not cut
    if (one.run_dir / "results.json").exists():  # absent when the notice came before the pipeline had started
        assert json.loads((one.run_dir / "results.json").read_text())["run"]["status"] == "stopped"
    objects = s3_objects(cloud["aws"])
    assert_no_half_checkpoint(objects)
    local = local_checkpoints(one.run_dir)
    if local:  # the newest checkpoint on disk is in S3, and S3 holds none the run has rotated out
        assert max(local) in complete_checkpoints(objects) and set(complete_checkpoints(objects)) <= set(local)
    assert not any(".upload/" in k for k in objects), objects
    # The secret reached the pipeline's environment through a file, never through Docker's configuration.
    config = (one.root / "docker" / "rlvr.config.json").read_text()
    assert SECRET["WANDB_API_KEY"] not in config and "secrets.env" in config
    assert "export WANDB_API_KEY=" in (one.root / "run" / "secrets.env").read_text()

    # Machine 2: restores, resumes, and is lost while uploading a checkpoint it wrote.
    before = set(complete_checkpoints(objects))
    cloud["slow"].started.clear()
    two = Machine(tmp_path / "two", cloud, tiny_model_dir, commit)
    wait_for(lambda: (two.root / "docker" / "rlvr.pid").exists(), two.proc, timeout=120)  # restored, started
    restored = local_checkpoints(two.run_dir)
    wait_for(lambda: any(f"checkpoint-{s}.upload/" in k for k in cloud["slow"].started for s in range(1, STEPS + 1)
                         if s not in before), two.proc, timeout=240)
    two.kill_everything()
    assert restored == ([max(before)] if before else [])  # only the newest complete one was downloaded
    objects = s3_objects(cloud["aws"])
    assert set(complete_checkpoints(objects)) == before, objects  # the cut upload is invisible
    assert_no_half_checkpoint(objects)

    # Machine 3: restores the newest complete checkpoint and finishes the run.
    three = Machine(tmp_path / "three", cloud, tiny_model_dir, commit)
    assert three.wait() == 0, three.output()[-3000:]
    assert f"restored checkpoints/checkpoint-{max(before)}" in three.output() if before else True
    objects = s3_objects(cloud["aws"])
    assert_no_half_checkpoint(objects)
    # the final checkpoint is there; the ones the run rotated out on disk are gone from S3 too (a checkpoint that was
    # superseded before a push came may never have been published: only the newest is)
    published = set(complete_checkpoints(objects))
    assert STEPS in published and published <= set(local_checkpoints(three.run_dir))
    assert not any(".upload/" in k for k in objects)

    # What S3 holds is the finished run: every step exactly once, the final step reached.
    final = tmp_path / "fetched"
    cli(cloud["aws"], "s3", "sync", f"s3://{BUCKET}/{RUN}/", str(final), "--only-show-errors")
    results = json.loads((final / "results.json").read_text())
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == STEPS
    assert results["train"]["resumed_from_step"] == (max(before) if before else None)
    steps = [r["step"] for r in read_jsonl(final / "metrics.jsonl") if r["event"] == "train"]
    assert steps == list(range(1, STEPS + 1)), steps
    assert (final / "model" / "model.safetensors").is_file()
