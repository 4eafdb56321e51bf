"""The TensorBoard observer's event files, read back with TensorBoard's own reader (``EventAccumulator``): training
scalars, evaluation scalars and tables, sample completions, the config; a resumed run's purge hides what the
interrupted run logged past its checkpoint."""

from __future__ import annotations

import importlib.util

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlvr.errors import ConfigError
from rlvr.interfaces import EvalResult
from rlvr.observers import TensorBoardObserver


def result(name, step=None, accuracy=0.5):
    return EvalResult(name=name, accuracy=accuracy, n=2, format_rate=1.0, parse_rate=0.5, mean_completion_tokens=3.0,
                      truncation_rate=0.0, per_task={"chain_sum": accuracy}, extra={"pass@4": 0.75}, step=step,
                      per_level={"chain_sum/L0": accuracy, "chain_sum/L1": accuracy / 2},
                      samples=[{"question": "1 + 2 = ?", "gold": "3", "completion": "It is\n3 | done",
                                "extracted": "3", "status": "correct"},
                               {"question": "2 + 2 = ?", "gold": "4", "completion": "five", "extracted": None,
                                "status": "unparseable"}])


def read(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    return events


def scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, round(e.value, 6)) for e in events.Scalars(tag)]


def text(events: EventAccumulator, tag: str) -> dict[int, str]:
    return {e.step: e.tensor_proto.string_val[0].decode() for e in events.Tensors(f"{tag}/text_summary")}


def run(tmp_path, steps, resume_step=None, reward=lambda s: s / 10):
    o = TensorBoardObserver(num_samples=1)
    o.on_pipeline_start(config={"seed": 0, "train": {"max_steps": 4}}, run_dir=str(tmp_path), resume_step=resume_step)
    if resume_step is None:
        o.on_evaluation(result=result("baseline", accuracy=0.25))
    for step in steps:
        metrics = {"reward": reward(step), "loss": 0.5, "note": "text", "curriculum/level/chain_sum": step // 2}
        o.on_train_log(step=step, max_steps=4, metrics=metrics,
                       warnings=["Only 5% of completions parsed"] if step == 1 else [])
        if step == 2:
            o.on_evaluation(result=result("step_2", step=2))
    o.on_evaluation(result=result("final", step=steps[-1], accuracy=0.75))
    o.on_pipeline_end(status="success")


def test_scalars_tables_and_samples_read_back_with_tensorboards_reader(tmp_path):
    run(tmp_path, [1, 2, 3, 4])
    events = read(tmp_path / "tensorboard")
    assert scalars(events, "train/reward") == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]
    assert "train/note" not in events.Tags()["scalars"]  # not a number
    assert scalars(events, "eval/accuracy") == [(0, 0.25), (2, 0.5), (4, 0.75)]  # baseline at step 0
    assert scalars(events, "eval/per_task/chain_sum") == [(0, 0.25), (2, 0.5), (4, 0.75)]
    assert scalars(events, "eval/pass@4") == [(0, 0.75), (2, 0.75), (4, 0.75)]
    # a curriculum: each task's level while training, held-out accuracy per level at each evaluation
    assert scalars(events, "train/curriculum/level/chain_sum") == [(1, 0), (2, 1), (3, 1), (4, 2)]
    assert scalars(events, "eval/per_level/chain_sum/L0") == [(0, 0.25), (2, 0.5), (4, 0.75)]
    assert scalars(events, "eval/per_level/chain_sum/L1") == [(0, 0.125), (2, 0.25), (4, 0.375)]
    table = text(events, "evaluation/final")[4]
    assert table.startswith("| metric | value |\n|---|---|\n") and "| accuracy | 0.75 |" in table
    assert "| n | 2 |" in table and "| per_task/chain_sum | 0.75 |" in table
    assert "| per_level/chain_sum/L1 | 0.375 |" in table
    samples = text(events, "samples/step_2")[2]
    assert samples.splitlines() == ["| question | gold | completion | extracted | status |", "|---|---|---|---|---|",
                                    "| 1 + 2 = ? | 3 | It is<br>3 \\| done | 3 | correct |"]  # num_samples=1
    assert text(events, "warnings") == {1: "Only 5% of completions parsed"}
    assert "seed: 0" in text(events, "config")[0] and "max_steps: 4" in text(events, "config")[0]


def test_a_resumed_run_shows_each_step_once(tmp_path):
    """Killed after step 3 (checkpoint at 2): the resumed run logs 3 and 4 again, with other values; TensorBoard
    shows the first run's steps up to 2, the resumed run's after, and the baseline once."""
    run(tmp_path, [1, 2, 3], reward=lambda s: -1.0)
    run(tmp_path, [3, 4], resume_step=2)
    events = read(tmp_path / "tensorboard")
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert scalars(events, "train/reward") == [(1, -1.0), (2, -1.0), (3, 0.3), (4, 0.4)]
    assert scalars(events, "eval/accuracy") == [(0, 0.25), (2, 0.5), (4, 0.75)]
    assert list(text(events, "config")) == [0]


def test_a_fresh_run_in_an_old_directory_hides_the_old_events(tmp_path):
    run(tmp_path, [1, 2, 3], reward=lambda s: -1.0)
    run(tmp_path, [1], reward=lambda s: 9.0)
    assert scalars(read(tmp_path / "tensorboard"), "train/reward") == [(1, 9.0)]


def test_without_the_tensorboard_package_the_config_is_refused(monkeypatch):
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find(name, *a))
    with pytest.raises(ConfigError, match=r'needs the tensorboard package: pip install "rlvr\[tensorboard\]"'):
        TensorBoardObserver()
