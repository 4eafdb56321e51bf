"""Runs that survive a kill. The pipeline runs in a subprocess on a tiny model (6 GRPO steps, a checkpoint every
2); we kill it for real and rerun the same command, which resumes from the latest complete checkpoint:

- SIGKILL at a random step after the first checkpoint: the resumed run ends at the same step, with one metrics
  record per step, and its final weights and per-step rewards equal an uninterrupted run's (exactly, on CPU);
- SIGKILL at random points of the whole run (loading, the baseline, any step or checkpoint, the final evaluation,
  saving the model): the same;
- SIGKILL after the last step's checkpoint, before the run ends: the resumed run trains no step more (the
  trainer's loop would take one more than ``max_steps``);
- SIGKILL while a checkpoint is being written: the previous checkpoint is intact and used;
- SIGTERM (a spot machine's notice): a checkpoint at the current step, exit 143 and a line saying how to resume.

Each killed run is counted in the fault-injection suite's ledger (:mod:`tests.faults.ledger`), its records
checked against the uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl, tiny_overrides
from tests.faults.ledger import LEDGER, Expected

VARIETY = "+reward.functions.variety={_target_: tests.unit.orchestration.test_orchestrator.variety, _partial_: true}"
SLOW_SAVE = '''
import time
import rlvr.files as files

_fsync_tree = files.fsync_tree


def slow_fsync_tree(root):
    if not str(root).endswith("checkpoint-2"):
        time.sleep(30)  # from the second checkpoint on: the window in which the test kills the process mid-write
    _fsync_tree(root)


files.fsync_tree = slow_fsync_tree
'''


def command(model_dir: Path, run_dir: Path) -> list[str]:
    overrides = [o for o in tiny_overrides(model_dir, run_dir) if not o.startswith(("train.max_steps", "observers"))]
    return [sys.executable, str(REPO / "run_pipeline.py"), *overrides, "train.max_steps=6", "train.save_steps=2",
            "observers=none", "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}", VARIETY]


def env(extra_path: Path | None = None) -> dict[str, str]:
    paths = [str(p) for p in (extra_path, REPO / "src", REPO) if p is not None]  # this checkout's code
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]


def wait_for(condition, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the run ended before the test could interrupt it"
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.02)


def logged(run_dir: Path) -> list[dict]:
    """The complete records of ``metrics.jsonl`` so far (a line being written is left out)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def logged_step(run_dir: Path, step: int) -> bool:
    return any(r.get("event") == "train" and r.get("step") == step for r in logged(run_dir))


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    run(command(tiny_model_dir, run_dir), env=env())
    return run_dir


def assert_same_run(resumed: Path, reference: Path) -> None:
    mine, theirs = train_records(resumed), train_records(reference)
    assert [r["step"] for r in mine] == [1, 2, 3, 4, 5, 6]  # each step once
    for a, b in zip(mine, theirs):
        assert a["reward"] == pytest.approx(b["reward"], abs=1e-5)
        assert a["rewards/variety/mean"] == pytest.approx(b["rewards/variety/mean"], abs=1e-5)
    ours, ref = weights(resumed), weights(reference)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
    results = json.loads((resumed / "results.json").read_text())
    assert results["train"]["global_step"] == 6 and results["run"]["status"] == "success"


def test_sigkill_after_the_first_checkpoint_then_resume(tiny_model_dir, tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    step = random.Random().randint(2, 5)  # any step after the first checkpoint (step 2)
    first = run_dir / "checkpoints" / "checkpoint-2" / "rlvr_state.json"  # step 2 is logged before it is saved
    with LEDGER.trial("SIGKILL after a checkpoint") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: first.exists() and logged_step(run_dir, step), proc)
        proc.kill()
        proc.wait()
        assert (run_dir / "checkpoints" / "checkpoint-2").is_dir()

        run(command(tiny_model_dir, run_dir), env=env())  # the same command again
        lost = trial.done(run_dir, Expected.of(uninterrupted), f"killed at step {step}, resumed")
    assert_same_run(run_dir, uninterrupted)
    assert lost == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["resumed_from_step"] in (2, 4) and results["train"]["resumed_from_step"] <= step
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]


def test_sigkill_after_the_last_checkpoint_trains_no_step_more(tiny_model_dir, tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "checkpoint-6" / "rlvr_state.json"
    with LEDGER.trial("SIGKILL after the last checkpoint") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(last.exists, proc)  # the last step is trained and saved; the final evaluation is to come
        proc.kill()
        proc.wait()
        run(command(tiny_model_dir, run_dir), env=env())
        lost = trial.done(run_dir, Expected.of(uninterrupted), "killed after checkpoint-6, resumed")
    assert_same_run(run_dir, uninterrupted)  # steps 1-6 once each, the same final weights
    assert lost == 0
    assert json.loads((run_dir / "results.json").read_text())["train"]["resumed_from_step"] == 6


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(tiny_model_dir, tmp_path, uninterrupted):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_SAVE)  # makes writing checkpoint-4 take 30 s
    run_dir = tmp_path / "run"
    with LEDGER.trial("SIGKILL while saving a checkpoint") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(hooks), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        staging = run_dir / "checkpoints" / ".checkpoint-4.tmp" / "checkpoint-4" / "trainer_state.json"
        wait_for(staging.exists, proc)  # checkpoint-4 is written but not yet fsynced and renamed
        proc.kill()
        proc.wait()
        complete = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*"))
        assert complete == ["checkpoint-2"]
        assert (run_dir / "checkpoints" / "checkpoint-2" / "rlvr_state.json").is_file()

        run(command(tiny_model_dir, run_dir), env=env())
        lost = trial.done(run_dir, Expected.of(uninterrupted), "resumed from checkpoint-2")
    assert_same_run(run_dir, uninterrupted)
    assert lost == 0
    assert json.loads((run_dir / "results.json").read_text())["train"]["resumed_from_step"] == 2
    assert not (run_dir / "checkpoints" / ".checkpoint-4.tmp").exists()


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tiny_model_dir, tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    with LEDGER.trial("SIGTERM") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: logged_step(run_dir, 3), proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
        line = next(line for line in err.splitlines() if "Resume with:" in line)
        assert "Stopped by SIGTERM at step" in line and f"output_dir={run_dir}" in line
        assert "FAILED" not in err  # a stop is not a failure: the one line above says what happened
        stopped_at = int(line.split("at step ")[1].split()[0])
        assert (run_dir / "checkpoints" / f"checkpoint-{stopped_at}" / "rlvr_state.json").is_file()
        assert json.loads((run_dir / "results.json").read_text())["run"]["status"] == "stopped"

        run(command(tiny_model_dir, run_dir), env=env())
        lost = trial.done(run_dir, Expected.of(uninterrupted), f"stopped at step {stopped_at}, resumed")
    assert_same_run(run_dir, uninterrupted)
    assert lost == 0


@pytest.mark.parametrize("attempt", [1, 2])
def test_sigkill_at_a_random_point_then_resume(tiny_model_dir, tmp_path, uninterrupted, attempt):
    """Killed at a random point of the whole run: once a random number of the records the uninterrupted run wrote
    to metrics.jsonl are written (any stage: loading, the baseline, a step and its checkpoint, the final
    evaluation, saving the model), and a random fraction of a second later."""
    rng = random.Random()
    total = len(logged(uninterrupted))
    after, delay = rng.randint(1, total - 1), rng.uniform(0.0, 0.5)
    run_dir = tmp_path / "run"
    with LEDGER.trial("SIGKILL at a random point") as trial:
        proc = subprocess.Popen(command(tiny_model_dir, run_dir), env=env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(logged(run_dir)) >= after, proc)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        last = logged(run_dir)[-1]
        where = f"step {last['step']}" if last["event"] == "train" else last.get("stage") or last.get("name") or ""
        run(command(tiny_model_dir, run_dir), env=env())
        lost = trial.done(run_dir, Expected.of(uninterrupted), f"killed after {last['event']} {where} +{delay:.2f}s")
    assert_same_run(run_dir, uninterrupted)
    assert lost == 0
