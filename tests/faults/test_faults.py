"""Faults injected into real runs of the pipeline (in this process, on the tiny model), each run to its end or
resumed by running it again, and its records counted against what an uninterrupted run writes
(:mod:`tests.faults.ledger`, whose table ends the test session):

- a reward function that raises, returns NaN, or hangs past ``reward.timeout_s``: the run finishes; exactly the
  samples the function failed on are masked and counted in ``reward_failures/<name>``;
- a NaN or inf loss: ``train.on_nonfinite_loss=skip`` leaves the weights unchanged at that step, counts the step
  and says so in its warnings; ``stop`` saves a checkpoint holding the weights before that step and stops the run
  with one line naming the step and why, and running it again resumes;
- an observer that raises: one warning per observer, and the run finishes with its results and metrics whole;
- the disk full while a checkpoint or ``results.json`` is written: the previous checkpoint and ``results.json``
  are intact, the error is one line, and running it again resumes.

SIGKILL at random points kills a subprocess: it is in ``tests/integration/test_resume.py``, in the same ledger.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlvr.errors import DiskFull, Stopped
from rlvr.orchestration import build_pipeline
from rlvr.train.checkpoints import latest_checkpoint
from tests.conftest import REPO, compose, read_jsonl, tiny_overrides
from tests.faults.ledger import LEDGER, Expected

JSONL = "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}"
VARIETY = "+reward.functions.variety={_target_: tests.unit.orchestration.test_orchestrator.variety, _partial_: true}"
TEST_SIZE = 4  # held-out questions in tiny_overrides: the lines of each samples file

HANG_S = 2.0  # how long the hanging reward sleeps; reward.timeout_s is far shorter


def _bad(completion: str) -> bool:
    """The samples a faulty reward fails on: about half of them, by their first character."""
    return not completion or ord(completion[0]) % 2 == 1


def _record(log: str, failed: int) -> None:
    """Append one line per sample failed on to ``log``: the rewards run in worker processes, so they count in a
    file, not in this process's memory."""
    if failed:
        with open(log, "a") as f:
            f.write("failed\n" * failed)


def raising(completions, log, **_):
    """Raises on any batch holding a bad sample; retried sample by sample, it raises on the bad ones only."""
    if len(completions) == 1:
        _record(log, _bad(completions[0]))
    if any(map(_bad, completions)):
        raise RuntimeError("a bug in a reward function (simulated)")
    return [1.0] * len(completions)


def not_finite(completions, log, **_):
    """NaN for the bad samples."""
    _record(log, sum(map(_bad, completions)))
    return [math.nan if _bad(c) else 1.0 for c in completions]


def hanging(completions, log, **_):
    """Sleeps far past the timeout on any batch (and so, retried, any sample) holding a bad sample."""
    if len(completions) == 1:
        _record(log, _bad(completions[0]))
    if any(map(_bad, completions)):
        time.sleep(HANG_S)
    return [1.0] * len(completions)


def overrides(model_dir: Path, run_dir: Path, *more: str) -> list[str]:
    return [*tiny_overrides(model_dir, run_dir), JSONL, VARIETY, *more]


def run(model_dir: Path, run_dir: Path, *more: str, observers: dict | None = None) -> dict:
    pipeline = build_pipeline(compose(overrides(model_dir, run_dir, *more)))
    pipeline.observers = {**(observers or {}), **pipeline.observers}  # faulty observers first
    return pipeline.run(run_dir)


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["event"] == "train"]


def hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def weights_of(checkpoint: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(checkpoint / "model.safetensors")


# --- rewards ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fault"), [("raising", "reward raises"), ("not_finite", "reward returns NaN"),
                                             ("hanging", "reward hangs")])
def test_a_failing_reward_masks_and_counts_its_samples_and_the_run_finishes(tiny_model_dir, tmp_path, name, fault):
    log = tmp_path / "failed_on.txt"
    with LEDGER.trial(fault) as trial:
        results = run(tiny_model_dir, tmp_path, f"+reward.functions.{name}={{_target_: tests.faults.test_faults."
                                                f"{name}, _partial_: true, log: '{log}'}}", "reward.timeout_s=0.25")
        failed = int(sum(r[f"reward_failures/{name}"] for r in train_records(tmp_path)))
        lost = trial.done(tmp_path, Expected.shaped(steps=2, test_size=TEST_SIZE), f"{failed} samples masked")
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    failed_on = len(log.read_text().splitlines()) if log.exists() else 0
    if name == "hanging":  # a sample queued behind hung workers in the same retry is cut off too (the suite says so)
        assert failed >= failed_on > 0
    else:
        assert failed == failed_on > 0  # exactly the samples it failed on, masked and counted
    assert all(math.isfinite(r["reward"]) and math.isfinite(r["loss"]) for r in train_records(tmp_path))
    assert lost == 0


# --- non-finite loss -------------------------------------------------------------------------------------------

POISONS = {"nan": lambda loss: loss * math.nan,  # NaN gradients too
           "inf": lambda loss: loss + math.inf}  # finite gradients: only the loss says something is wrong


@pytest.fixture
def poison(monkeypatch):
    """``poison(step, kind, trainer="GRPOTrainer")``: that TRL trainer's loss becomes NaN or inf in that optimizer
    step. Returns the weights each step started from, by step."""
    import trl

    started: dict[int, dict[str, torch.Tensor]] = {}

    def arm(at_step: int, kind: str, trainer: str = "GRPOTrainer") -> dict[int, dict[str, torch.Tensor]]:
        cls = getattr(trl, trainer)
        compute_loss = cls.compute_loss

        def poisoned(self, model, inputs, *args, **kwargs):
            step = self.state.global_step + 1
            started.setdefault(step, {k: v.detach().clone() for k, v in model.named_parameters()})
            loss = compute_loss(self, model, inputs, *args, **kwargs)
            return POISONS[kind](loss) if step == at_step else loss

        monkeypatch.setattr(cls, "compute_loss", poisoned)
        return started

    return arm


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    common = a.keys() & b.keys()
    assert common
    return all(torch.equal(a[k], b[k]) for k in common)


SFT = ("train=sft", "~train.num_generations")  # every TRL loop runs through the same guard (trl_bridge)


@pytest.mark.parametrize(("kind", "trainer", "loop"), [("nan", "GRPOTrainer", ()), ("inf", "GRPOTrainer", ()),
                                                       ("nan", "SFTTrainer", SFT)])
def test_skip_leaves_the_weights_unchanged_at_a_non_finite_step_and_counts_it(tiny_model_dir, tmp_path, poison,
                                                                                kind, trainer, loop):
    started = poison(2, kind, trainer)
    with LEDGER.trial(f"{kind} loss, skip" + (" (sft)" if loop else "")) as trial:
        results = run(tiny_model_dir, tmp_path, *loop, "train.max_steps=3")
        lost = trial.done(tmp_path, Expected.shaped(steps=3, test_size=TEST_SIZE), "step 2 skipped")
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 3
    assert not same(started[1], started[2])  # step 1 trained
    assert same(started[2], started[3])  # step 2 did not change a weight
    final = weights_of(tmp_path / "checkpoints" / "checkpoint-3")
    assert not same(started[3], final)  # and step 3 trained again
    records = train_records(tmp_path)
    assert [r["nonfinite/skipped_steps"] for r in records] == [0, 1, 1]
    assert any(w.startswith(f"Step 2: the loss was {kind}, so its update was skipped") for w in records[1]["warnings"])
    assert lost == 0


def test_stop_saves_the_weights_before_the_step_says_why_and_resumes(tiny_model_dir, tmp_path, poison, caplog,
                                                                      monkeypatch):
    started = poison(2, "nan")
    with LEDGER.trial("nan loss, stop") as trial:
        with caplog.at_level(logging.ERROR, logger="rlvr"), pytest.raises(Stopped) as stopped:
            run(tiny_model_dir, tmp_path, "train.max_steps=3", "train.on_nonfinite_loss=stop")
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert said == ["[rlvr] step 2: the loss was nan; its update is not applied, and training stops after saving "
                        "a checkpoint (train.on_nonfinite_loss=stop)."]
        assert stopped.value.step == 2 and stopped.value.signal is None
        assert "non-finite loss (the loss was nan; train.on_nonfinite_loss=stop) at step 2" in str(stopped.value)
        results = json.loads((tmp_path / "results.json").read_text())
        assert results["run"]["status"] == "stopped" and results["run"]["stopped"] == str(stopped.value)
        checkpoint = latest_checkpoint(tmp_path / "checkpoints")
        assert checkpoint.name == "checkpoint-2" and same(weights_of(checkpoint), started[2])

        monkeypatch.undo()  # the fault was passing: the same command again resumes
        results = run(tiny_model_dir, tmp_path, "train.max_steps=3", "train.on_nonfinite_loss=stop")
        lost = trial.done(tmp_path, Expected.shaped(steps=3, test_size=TEST_SIZE), "stopped at step 2, resumed")
    assert results["run"]["status"] == "success" and results["train"]["resumed_from_step"] == 2
    assert lost == 0


# --- observers -------------------------------------------------------------------------------------------------

class Broken:
    """An observer that raises in every event."""

    def __init__(self):
        self.calls = 0

    def _raise(self, **_):
        self.calls += 1
        raise RuntimeError("a bug in an observer (simulated)")

    on_pipeline_start = on_stage_end = on_train_log = on_evaluation = on_pipeline_end = _raise


class BrokenOnLogs(Broken):
    """One that raises from the first training log on."""

    on_pipeline_start = on_stage_end = on_evaluation = on_pipeline_end = None


def test_an_observer_that_raises_is_said_once_and_the_run_finishes_whole(tiny_model_dir, tmp_path, caplog):
    broken, on_logs = Broken(), BrokenOnLogs()
    with LEDGER.trial("observer raises") as trial:
        with caplog.at_level(logging.WARNING, logger="rlvr"):
            results = run(tiny_model_dir, tmp_path, observers={"broken": broken, "on_logs": on_logs})
        lost = trial.done(tmp_path, Expected.shaped(steps=2, test_size=TEST_SIZE), "disabled, one warning each")
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Observer ")]
    assert len(said) == 2 and said[0].startswith("Observer Broken raised in on_pipeline_start")
    assert said[1].startswith("Observer BrokenOnLogs raised in on_train_log")
    assert broken.calls == on_logs.calls == 1  # disabled after its first failure
    assert results["run"]["status"] == "success"
    assert json.loads((tmp_path / "results.json").read_text())["final"]["n"] == TEST_SIZE
    assert lost == 0  # the other observers (metrics.jsonl) got every event


# --- disk full -------------------------------------------------------------------------------------------------

def no_space(path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_disk_full_while_saving_a_checkpoint_keeps_the_previous_one(tiny_model_dir, tmp_path, monkeypatch):
    checkpoints = tmp_path / "checkpoints"
    kept: dict[str, str] = {}
    save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f):  # half of the optimizer's state written, then the disk is full
            kept.update(hashes(checkpoints / "checkpoint-2"))
            Path(f).write_bytes(b"\0" * 1024)
            raise no_space(str(f))
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    more = ("train.max_steps=4", "train.save_steps=2")
    with LEDGER.trial("disk full: checkpoint") as trial:
        with pytest.raises(DiskFull) as full:
            run(tiny_model_dir, tmp_path, *more)
        assert str(full.value) == (f"The disk is full (No space left on device): checkpoint-4 could not be written in "
                                   f"{checkpoints}; the previous one (checkpoint-2) is intact. Free some space and "
                                   "rerun the same command to resume.")
        assert kept and hashes(checkpoints / "checkpoint-2") == kept  # untouched, byte for byte
        assert [p.name for p in checkpoints.glob("*checkpoint-*")] == ["checkpoint-2"]  # no half checkpoint left
        results = json.loads((tmp_path / "results.json").read_text())
        assert results["run"]["status"] == "failed" and results["run"]["error"] == f"DiskFull: {full.value}"

        monkeypatch.undo()  # space freed
        results = run(tiny_model_dir, tmp_path, *more)
        lost = trial.done(tmp_path, Expected.shaped(steps=4, test_size=TEST_SIZE), "resumed from checkpoint-2")
    assert results["run"]["status"] == "success" and results["train"]["resumed_from_step"] == 2
    assert lost == 0


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the file being written through /proc")
def test_disk_full_while_writing_results_keeps_the_previous_results(tiny_model_dir, tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    before: list[str] = []  # results.json as it was when the disk filled up
    fdopen = os.fdopen

    class FillingDisk:
        """A file of its own; once the final evaluation is written to it, it takes half of what it is given and
        reports the disk full, then and ever after."""

        def __init__(self, f):
            self.f = f

        def write(self, text):
            if not before and '"final"' not in text:
                return self.f.write(text)
            if not before:
                before.append(path.read_text())
            self.f.write(text[: len(text) // 2])
            raise no_space(self.f.name)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def full_disk(fd, *args, **kwargs):
        f = fdopen(fd, *args, **kwargs)
        return FillingDisk(f) if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path / ".results.json.")) else f

    monkeypatch.setattr(os, "fdopen", full_disk)
    with LEDGER.trial("disk full: results.json") as trial:
        with pytest.raises(DiskFull, match="^The disk is full .*: results.json could not be written in .*; the "
                                           "previous results.json is intact"):
            run(tiny_model_dir, tmp_path, "eval.eval_steps=1")
        assert before and path.read_text() == before[0]  # the last complete results.json, whole
        assert not list(tmp_path.glob(".results.json.*"))  # no half-written temporary file left
        assert "baseline" in json.loads(before[0])

        monkeypatch.undo()  # space freed
        results = run(tiny_model_dir, tmp_path, "eval.eval_steps=1")
        lost = trial.done(tmp_path, Expected.shaped(steps=2, test_size=TEST_SIZE, eval_steps=1),
                          "resumed, results whole")
    assert results["run"]["status"] == "success" and json.loads(path.read_text())["final"]["n"] == TEST_SIZE
    assert lost == 0


FULL_DISK = '''
import errno
import os
import tempfile

_mkstemp = tempfile.mkstemp


def mkstemp(*args, dir=None, **kwargs):
    if dir is not None and str(dir).startswith(os.environ["FULL_DISK"]):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _mkstemp(*args, dir=dir, **kwargs)


tempfile.mkstemp = mkstemp
'''


def test_disk_full_is_one_line_on_the_command_line(tiny_model_dir, tmp_path):
    """The command says it in one line, without a traceback, and exits 1 (here the disk is full from the start)."""
    hooks, run_dir = tmp_path / "hooks", tmp_path / "run"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FULL_DISK)
    env = {**os.environ, "FULL_DISK": str(run_dir),
           "PYTHONPATH": os.pathsep.join(str(p) for p in (hooks, REPO / "src", REPO))}
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), *tiny_overrides(tiny_model_dir, run_dir)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"[rlvr] The disk is full (No space left on device): config.yaml could not be written in {run_dir}; no "
        "half-written file is left. Free some space and rerun the same command to resume.")
