"""How a job reacts to SIGTERM (a spot machine's notice) and SIGINT, at its two levels (rlvr.train.checkpoints):
outside training a signal stops the job at once; inside, the loop is told to save and stop after the step; a
repeated SIGTERM (a launcher forwards the machine's) never kills, a second Ctrl-C does. And the commit that wrote a
checkpoint is recorded and checked on resume."""

from __future__ import annotations

import json
import os
import signal

import pytest

from rlvr.errors import ConfigError, Stopped
from rlvr.orchestration import build_pipeline
from rlvr.train import checkpoints
from rlvr.train.checkpoints import STATE_FILE, StopOnSignal, code_commit
from tests.conftest import compose, tiny_overrides


def test_outside_training_a_signal_stops_the_job_at_once_and_only_once():
    with pytest.raises(Stopped) as stopped:
        with StopOnSignal(at_once=True, run_dir="runs/x"):
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("the signal did not stop the job")
    assert stopped.value.reason == "SIGTERM" and stopped.value.step is None and stopped.value.signal == 15
    assert "outside training" in str(stopped.value) and "runs/x/checkpoints" in str(stopped.value)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back when the job ends


def test_inside_training_a_signal_is_a_request_and_a_repeated_sigterm_does_not_kill():
    with StopOnSignal(at_once=True, run_dir="r"):
        with StopOnSignal() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # forwarded again by a launcher: still caught
            assert stop.received == "SIGTERM" and stop.should_stop()
        # after the loop, the job-level handler does not raise again: the loop's checkpoint is the stop
        os.kill(os.getpid(), signal.SIGTERM)
    assert StopOnSignal.stopping == "SIGTERM"


def test_a_second_ctrl_c_quits_at_once():
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.received == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_a_checkpoint_records_the_commit_of_the_code(monkeypatch):
    monkeypatch.setenv("RLVR_COMMIT", "a" * 40)
    code_commit.cache_clear()
    try:
        assert checkpoints.checkpoint_state(3, 12)["commit"] == "a" * 40
    finally:
        code_commit.cache_clear()


def test_a_checkpoint_is_resumed_only_by_the_commit_that_wrote_it(tiny_model_dir, tmp_path, caplog):
    base = tiny_overrides(tiny_model_dir, tmp_path) + ["train.max_steps=2", "train.save_steps=1", "eval.baseline=false"]
    build_pipeline(compose(base)).run(tmp_path)
    (tmp_path / "results.json").unlink()  # as if the run had been stopped after its last checkpoint
    state = tmp_path / "checkpoints" / "checkpoint-2" / STATE_FILE
    assert json.loads(state.read_text())["commit"] == code_commit()
    state.write_text(json.dumps({**json.loads(state.read_text()), "commit": "0" * 40}))
    with pytest.raises(ConfigError, match=r"written by commit 000000000000, and this code is commit .*"
                                          r"resume_other_commit=true"):
        build_pipeline(compose(base)).run(tmp_path)
    results = build_pipeline(compose(base + ["resume_other_commit=true"])).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["resumed_from_step"] == 2
    assert "checkpoint-2 was written by commit 000000000000" in caplog.text
