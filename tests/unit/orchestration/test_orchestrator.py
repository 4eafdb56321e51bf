"""The whole lifecycle on a tiny random model: events in order, files written, weights changed, and a
failure that reaches observers as a failed end without losing what was already measured."""

from __future__ import annotations

import json

import pytest
import torch

from rlvr.orchestration import PipelineOrchestrator
from tests.conftest import compose, read_jsonl, tiny_overrides


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def __getattr__(self, event):
        if not event.startswith("on_"):
            raise AttributeError(event)
        return lambda **kw: self.events.append((event, kw))


def variety(completions, **_):
    """A plain TRL-style reward by _target_: distinct characters, so a random model's groups differ."""
    return [float(len(set(c))) for c in completions]


SIGNAL = "+reward.functions.variety={_target_: tests.unit.orchestration.test_orchestrator.variety, _partial_: true}"


@pytest.fixture
def orchestrator(tiny_model_dir, tmp_path):
    cfg = compose(tiny_overrides(tiny_model_dir, tmp_path) + ["observers=default", "eval.eval_steps=1", SIGNAL])
    orch = PipelineOrchestrator(cfg, run_dir=tmp_path)
    recorder = Recorder()
    orch.observers.observers.append(recorder)
    return orch, recorder


def test_pipeline_runs_every_stage_and_writes_the_run_directory(orchestrator, tmp_path):
    orch, rec = orchestrator
    initial = None

    def snapshot():
        nonlocal initial
        initial = {k: v.detach().clone() for k, v in orch.model.named_parameters()}

    original_baseline = orch.baseline_eval
    orch.baseline_eval = lambda: (snapshot(), original_baseline())[1]
    results = orch.run()

    names = [e for e, _ in rec.events]
    stages = [kw["step_name"] for e, kw in rec.events if e == "on_step_start"]
    assert stages == ["setup", "data", "model", "rewards", "baseline_eval", "train", "final_eval", "save"]
    assert names[0] == "on_pipeline_start" and names[-1] == "on_pipeline_end"
    assert rec.events[-1][1]["status"] == "success"
    train_logs = [kw for e, kw in rec.events if e == "on_train_log"]
    assert [kw["step"] for kw in train_logs] == [1, 2]
    assert all("loss" in kw["metrics"] and "score/parse_rate" in kw["metrics"] for kw in train_logs)
    assert all("rewards/variety/mean" in kw["metrics"] and "rewards/correctness/mean" in kw["metrics"]
               for kw in train_logs)
    evals = [kw["result"].name for e, kw in rec.events if e == "on_evaluation"]
    assert evals == ["baseline", "step_1", "final"]  # eval_steps=1; the last step is the final eval

    changed = any(not torch.equal(initial[k], v) for k, v in orch.model.named_parameters())
    assert changed, "training must change the weights"

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["baseline"]["n"] == 4 and 0.0 <= saved["final"]["accuracy"] <= 1.0
    assert saved["train"]["global_step"] == 2 and results["final"] == saved["final"]
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "model" / "config.json").exists()
    assert len(read_jsonl(tmp_path / "samples_final.jsonl")) == 4
    events = [r["event"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert events.count("train") == 2 and events.count("eval") == 3 and events[-1] == "pipeline_end"


def test_failure_reaches_observers_and_keeps_results(orchestrator, tmp_path):
    orch, rec = orchestrator

    def broken_train():
        raise RuntimeError("out of memory (simulated)")

    orch.train = broken_train
    with pytest.raises(RuntimeError, match="simulated"):
        orch.run()
    end = rec.events[-1]
    assert end[0] == "on_pipeline_end" and end[1]["status"] == "failed"
    assert isinstance(end[1]["error"], RuntimeError)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert "baseline" in saved and "final" not in saved  # what was measured before the failure is kept


def test_lora_run_saves_an_adapter(tiny_model_dir, tmp_path):
    cfg = compose(tiny_overrides(tiny_model_dir, tmp_path) + ["model.lora.enabled=true", "model.lora.r=2",
                                                             "eval.baseline=false", "train.max_steps=1"])
    results = PipelineOrchestrator(cfg, run_dir=tmp_path).run()
    assert (tmp_path / "model" / "adapter_config.json").exists()
    assert results["model"]["trainable_parameters"] < results["model"]["total_parameters"]
    assert "baseline" not in results and "final" in results
