"""Observers: a raising observer is disabled (not fatal); console, JSONL, report and W&B (offline) record events;
the console's lines reach the run's log file through the ``hydra/job_logging=rlvr`` config."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys

import pytest

from rlvr.config import register_resolvers
from rlvr.interfaces import EvalResult
from rlvr.observers import (
    ConsoleObserver,
    JsonlObserver,
    Observers,
    ReportObserver,
    WandbObserver,
)
from rlvr.observers.console import TqdmHandler


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


@pytest.fixture
def rlvr_logs(caplog):
    """The ``rlvr`` loggers' records at INFO and above (what the console and run_pipeline.log show)."""
    with caplog.at_level(logging.INFO, logger="rlvr"):
        yield caplog


def test_console_logs_summary_and_plain_warnings(rlvr_logs):
    c = ConsoleObserver(warn_every=10)
    metrics = {"reward": 0.25, "reward_std": 0.4, "completions/clipped_ratio": 1.0, "loss": 0.0}
    c.on_train_log(step=1, max_steps=3, metrics=metrics, warnings=["All completions were cut off"])
    c.on_train_log(step=2, max_steps=3, metrics=metrics, warnings=["All completions were cut off"])
    c.on_evaluation(result=result("baseline"))
    c.on_pipeline_end(status="success", results={"baseline": {"accuracy": 0.25, "n": 4},
                                                 "final": {"accuracy": 0.5, "n": 4}})
    lines = [(r.levelno, r.getMessage()) for r in rlvr_logs.records if r.name.startswith("rlvr")]
    assert (logging.INFO, "step 1/3 | reward 0.250±0.40 | cut 100% | loss 0.0000") in lines
    warnings = [m for level, m in lines if level == logging.WARNING]
    assert warnings == ["  WARNING: All completions were cut off"]  # not repeated within warn_every steps
    assert (logging.INFO, "[rlvr] accuracy 25.0% -> 50.0% (+25.0 points) on n=4") in lines


def test_console_shows_pass_at_k(rlvr_logs):
    r = result()
    r.extra.update({"pass@8": 0.75, "maj@8": 0.5, "generation_s": 3.0})
    ConsoleObserver().on_evaluation(result=r)
    assert "pass@8 75.0%" in rlvr_logs.text and "maj@8 50.0%" in rlvr_logs.text
    assert "generation_s" not in rlvr_logs.text


def test_console_reports_failure(rlvr_logs):
    ConsoleObserver().on_pipeline_end(status="failed", error=RuntimeError("boom"), results={})
    assert "FAILED: RuntimeError: boom" in rlvr_logs.text


def test_console_says_nothing_of_a_failure_when_a_signal_stopped_the_run(rlvr_logs):
    """The entry point prints the one line for a stop (where, and how to resume); no "FAILED: NoneType: None"."""
    ConsoleObserver().on_pipeline_end(status="stopped", error=None, results={})
    assert "FAILED" not in rlvr_logs.text and not [r for r in rlvr_logs.records if r.levelno >= 40]


def test_progress_bar_shows_seconds_per_step_from_the_first_step(monkeypatch, rlvr_logs):
    """The bar opens when the train stage starts, so a 33 s first step reads 33 s/step (not 6061 step/s)."""
    clock = [1000.0]
    monkeypatch.setattr("tqdm.std.time", lambda: clock[0])
    c = ConsoleObserver()
    c.on_stage_start(stage="train")
    assert c._bar is not None
    clock[0] += 33.0  # model setup inside the trainer + the first GRPO step
    c.on_train_log(step=1, max_steps=30, metrics={"reward": 0.1}, warnings=[])
    shown = str(c._bar)
    assert "1/30" in shown and "33.00s/step" in shown and "step/s" not in shown
    clock[0] += 30.0
    c.on_train_log(step=2, max_steps=30, metrics={"reward": 0.1}, warnings=[])
    assert "2/30" in str(c._bar) and "s/step" in str(c._bar)
    c.on_stage_end(stage="train", output={"global_step": 2})
    assert c._bar is None and "[rlvr] train done: global_step=2" in rlvr_logs.text


def test_stage_ends_are_recorded(tmp_path):
    o = JsonlObserver()
    o.on_pipeline_start(config={}, run_dir=str(tmp_path))
    o.on_stage_end(stage="data", output={"train_rows": 4})
    o.on_stage_end(stage="model", output={"total_parameters": 10})
    o.on_pipeline_end(status="success")
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(x["event"], x.get("stage")) for x in lines[1:3]] == [("stage_end", "data"), ("stage_end", "model")]
    assert lines[1]["train_rows"] == 4 and lines[2]["total_parameters"] == 10


@pytest.fixture
def clean_logging():
    """Put the root and ``rlvr`` loggers back as they were (dictConfig replaces their handlers)."""
    root, package = logging.getLogger(), logging.getLogger("rlvr")
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in (root, package)]
    yield
    for lg, handlers, level, propagate in saved:
        for h in lg.handlers:
            if h not in handlers:
                h.close()
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def test_job_logging_config_puts_console_lines_in_the_log_file_once(tmp_path, capsys, clean_logging):
    """``hydra/job_logging=rlvr``, composed as Hydra does it: plain lines on the console, each once; the same
    lines with timestamps in run_pipeline.log; libraries' INFO chatter in neither."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf, open_dict

    register_resolvers()
    with initialize_config_module("rlvr.conf", version_base=None):
        cfg = compose("config", overrides=["hydra/job_logging=rlvr"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)  # set by Hydra when a job runs
    logging.config.dictConfig(OmegaConf.to_container(cfg.hydra.job_logging, resolve=True))

    c = ConsoleObserver()
    c.on_pipeline_start(config={}, run_dir=str(tmp_path))
    c.on_train_log(step=1, max_steps=2, metrics={"reward": 0.5}, warnings=["Only 5% of completions parsed"])
    c.on_evaluation(result=result("final", step=2))
    c.on_pipeline_end(status="success", results={"baseline": {"accuracy": 0.25, "n": 4},
                                                 "final": {"accuracy": 0.5, "n": 4}})
    logging.getLogger("some_library").info("HTTP Request: GET https://example.org")
    logging.getLogger("some_library").warning("a library warning")

    expected = [f"[rlvr] run directory: {tmp_path}", "step 1/2 | reward 0.500±0.00",
                "  WARNING: Only 5% of completions parsed", "[rlvr] eval final (step 2): accuracy 50.0% on n=4",
                "[rlvr] accuracy 25.0% -> 50.0% (+25.0 points) on n=4", "a library warning"]
    out = capsys.readouterr().out.splitlines()
    for line in expected:
        assert sum(line == o or o.startswith(line + " |") for o in out) == 1, (line, out)
    assert not any("HTTP Request" in o for o in out)
    logged = (tmp_path / "run_pipeline.log").read_text().splitlines()
    assert len(logged) == len(expected)
    for line, entry in zip(expected, logged):
        assert re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[[\w.]+\]\[(INFO|WARNING)\] ", entry), entry
        assert line in entry
    assert "[WARNING]   WARNING: Only 5%" in logged[2]


def test_tqdm_handler_keeps_the_bar_whole(capsys):
    """A line logged while the bar is on screen clears the bar, prints, and draws the bar again after it."""
    from tqdm import tqdm

    handler = TqdmHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    bar = tqdm(total=3, desc="train", file=sys.stderr, ascii=True)
    bar.update(1)
    handler.emit(logging.LogRecord("rlvr", logging.INFO, __file__, 1, "step 1/3 | reward 0.5", None, None))
    bar.close()
    err = capsys.readouterr().err
    line_at = err.index("step 1/3 | reward 0.5\n")
    assert err[line_at - 1] == "\r"  # the bar was cleared first: the line starts at column 0
    assert "train:" in err[line_at:]  # and drawn again afterwards


def test_console_lines_show_without_any_logging_config(monkeypatch, capsys):
    """A notebook or script with no logging set up still sees the console lines (on stdout)."""
    package = logging.getLogger("rlvr")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "level", logging.NOTSET)
    ConsoleObserver().on_pipeline_start(config={}, run_dir="/tmp/run")
    logging.getLogger("rlvr.observers.console").info("step 1/2 | reward 0.5")
    assert capsys.readouterr().out.splitlines() == ["[rlvr] run directory: /tmp/run", "step 1/2 | reward 0.5"]
    assert isinstance(package.handlers[0], TqdmHandler)


def test_report_observer_names_the_report_and_plots(tmp_path, rlvr_logs):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"event": "pipeline_start"}, *({"event": "train", "step": s, "reward": 0.5} for s in (1, 2))]))
    o = ReportObserver()
    o.on_pipeline_start(config={}, run_dir=str(tmp_path))
    o.on_pipeline_end(status="success", results={"train": {"global_step": 2}})
    assert f"[rlvr] report: {tmp_path / 'report.md'}" in rlvr_logs.text
    assert f"[rlvr] plots: {tmp_path / 'plots' / 'training_curves.png'}" in rlvr_logs.text


def test_wandb_observer_offline_writes_a_run(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    o = WandbObserver(project="rlvr-test", mode="offline")  # offline by its setting, not the environment
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


def test_jsonl_is_cut_back_to_the_resumed_step_and_a_fresh_run_starts_it(tmp_path):
    import json

    from rlvr.observers import JsonlObserver

    path = tmp_path / "metrics.jsonl"
    old = [{"event": "pipeline_start"}, {"event": "eval", "name": "baseline", "step": None},
           *({"event": "train", "step": s} for s in range(1, 6)), {"event": "eval", "name": "step_4", "step": 4},
           {"event": "eval", "name": "final", "step": None}]  # killed before it finished: the resumed run redoes it
    path.write_text("".join(json.dumps(r) + "\n" for r in old) + '{"event": "train", "st')  # a torn last line
    obs = JsonlObserver()
    obs.on_pipeline_start(config={}, run_dir=str(tmp_path), resume_step=2)
    obs.on_pipeline_end(status="success")
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("step") for r in kept if r["event"] == "train"] == [1, 2]
    assert [r["name"] for r in kept if r["event"] == "eval"] == ["baseline"]
    assert kept[-2] == {**kept[-2], "event": "pipeline_start", "resume_step": 2}

    fresh = JsonlObserver()
    fresh.on_pipeline_start(config={}, run_dir=str(tmp_path))
    fresh.on_pipeline_end(status="success")
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["pipeline_start", "pipeline_end"]


def test_summary_line_shows_token_accuracy_for_supervised_steps():
    from rlvr.observers.console import summary_line

    assert summary_line({"loss": 0.5, "mean_token_accuracy": 0.875}) == "loss 0.5000 | token acc 88%"


@pytest.mark.parametrize(("metrics", "expected"), [
    ({"loss": 0.6, "rewards/margins": 0.25, "rewards/accuracies": 0.75, "mean_token_accuracy": 0.1},
     "loss 0.6000 | margin 0.250 | pref acc 75%"),   # dpo, simpo
    ({"loss": 0.5, "rewards/margins": -0.1}, "loss 0.5000 | margin -0.100"),  # kto: no accuracy
    ({"loss": 0.6, "margin": 1.5, "accuracy": 1.0}, "loss 0.6000 | margin 1.500 | pref acc 100%"),  # reward_model
])
def test_summary_line_shows_margin_and_preference_accuracy(metrics, expected):
    from rlvr.observers.console import summary_line

    assert summary_line(metrics) == expected


def test_console_shows_a_reward_models_pairwise_evaluation(rlvr_logs):
    r = result("final")
    r.extra = {"pairwise_margin": 0.5}
    ConsoleObserver().on_evaluation(result=r)
    assert "eval final: pairwise accuracy" in rlvr_logs.text and "mean margin 0.500" in rlvr_logs.text
    assert "format" not in rlvr_logs.text
