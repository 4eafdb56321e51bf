"""Observers: a raising observer is disabled (not fatal); console, JSONL and W&B (offline) record events."""

from __future__ import annotations

import json

from rlvr.interfaces import EvalResult
from rlvr.observers import ConsoleObserver, JsonlObserver, Observers, WandbObserver


class Recorder:
    def __init__(self):
        self.events = []

    def on_train_log(self, **kw):
        self.events.append(("on_train_log", kw["step"]))


class Broken:
    def on_train_log(self, **kw):
        raise RuntimeError("observer bug")


def result(name="final", step=None):
    return EvalResult(name=name, accuracy=0.5, n=4, format_rate=1.0, parse_rate=1.0, mean_completion_tokens=3.0,
                      truncation_rate=0.0, per_task={"chain_sum": 0.5}, step=step)


def test_broken_observer_is_disabled_and_others_keep_receiving():
    rec, broken = Recorder(), Broken()
    obs = Observers([broken, rec])
    for step in (1, 2):
        obs.notify("on_train_log", step=step, max_steps=2, metrics={}, warnings=[])
    assert rec.events == [("on_train_log", 1), ("on_train_log", 2)]
    assert obs.disabled and obs.disabled[0][0] is broken


def test_unknown_event_is_a_programming_error():
    import pytest

    with pytest.raises(ValueError, match="Unknown event"):
        Observers([]).notify("on_something", x=1)


def test_jsonl_observer_writes_one_line_per_event(tmp_path):
    o = JsonlObserver()
    o.on_pipeline_start(config={}, run_dir=str(tmp_path))
    o.on_train_log(step=1, max_steps=2, metrics={"reward": 0.5}, warnings=["careful"])
    o.on_evaluation(result=result())
    o.on_pipeline_end(status="success", error=None)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines] == ["pipeline_start", "train", "eval", "pipeline_end"]
    assert lines[1]["reward"] == 0.5 and lines[1]["warnings"] == ["careful"]
    assert lines[2]["accuracy"] == 0.5 and "samples" not in lines[2]


def test_console_prints_summary_and_plain_warnings(capsys):
    c = ConsoleObserver(warn_every=10)
    metrics = {"reward": 0.25, "reward_std": 0.4, "completions/clipped_ratio": 1.0, "loss": 0.0}
    c.on_train_log(step=1, max_steps=3, metrics=metrics, warnings=["All completions were cut off"])
    c.on_train_log(step=2, max_steps=3, metrics=metrics, warnings=["All completions were cut off"])
    c.on_evaluation(result=result("baseline"))
    c.on_pipeline_end(status="success", results={"baseline": {"accuracy": 0.25, "n": 4},
                                                 "final": {"accuracy": 0.5, "n": 4}})
    out = capsys.readouterr().out
    assert "step 1/3 | reward 0.250" in out and "cut 100%" in out
    assert out.count("WARNING: All completions were cut off") == 1  # not repeated within warn_every steps
    assert "accuracy 25.0% -> 50.0% (+25.0%)" in out


def test_console_shows_pass_at_k(capsys):
    r = result()
    r.extra.update({"pass@8": 0.75, "maj@8": 0.5, "generation_s": 3.0})
    ConsoleObserver().on_evaluation(result=r)
    out = capsys.readouterr().out
    assert "pass@8 75.0%" in out and "maj@8 50.0%" in out and "generation_s" not in out


def test_console_reports_failure(capsys):
    ConsoleObserver().on_pipeline_end(status="failed", error=RuntimeError("boom"), results={})
    assert "FAILED: RuntimeError: boom" in capsys.readouterr().out


def test_wandb_observer_offline_writes_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    o = WandbObserver(project="rlvr-test")
    o.on_pipeline_start(config={"seed": 0}, run_dir=str(tmp_path))
    o.on_train_log(step=1, max_steps=1, metrics={"reward": 1.0}, warnings=[])
    r = result(step=1)
    r.extra["pass@4"] = 0.75
    logged = []
    original = o.run.log
    o.run.log = lambda payload, step=None: (logged.append(payload), original(payload, step=step))
    o.on_evaluation(result=r)
    assert logged[0]["eval/accuracy"] == 0.5 and logged[0]["eval/pass@4"] == 0.75
    assert logged[0]["eval/per_task/chain_sum"] == 0.5
    o.on_pipeline_end(status="success")
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert runs and any(runs[0].rglob("*.wandb"))
