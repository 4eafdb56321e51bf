"""The whole lifecycle on a tiny random model: events in order, files written, weights changed, and a
failure that reaches observers as a failed end without losing what was already measured."""

from __future__ import annotations

import json
import multiprocessing
import re

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.observers import ConsoleObserver
from rlvr.orchestration import PipelineOrchestrator, build_pipeline
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
    pipeline = build_pipeline(cfg)
    recorder = Recorder()
    pipeline.observers["recorder"] = recorder
    return pipeline, recorder


def test_pipeline_runs_every_stage_and_writes_the_run_directory(orchestrator, tmp_path):
    orch, rec = orchestrator
    seen = {}
    original_train = orch.train

    def train(ctx, stage, model, *args):
        seen["initial"] = {k: v.detach().clone() for k, v in model.named_parameters()}
        (result, summary), output = original_train(ctx, stage, model, *args)
        seen["trained"] = result.model
        return (result, summary), output

    orch.train = train
    closed, original_close = [], orch.reward.close

    def close():
        closed.append(orch.reward._pool is not None)  # reward worker processes were running
        original_close()

    orch.reward.close = close
    children = {p.pid for p in multiprocessing.active_children()}
    results = orch.run(tmp_path, overrides=["train.max_steps=2"], command="rlvr-train train.max_steps=2")
    assert closed[-1] is True and not {p.pid for p in multiprocessing.active_children()} - children

    names = [e for e, _ in rec.events]
    stages = [kw["stage"] for e, kw in rec.events if e == "on_stage_start"]
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

    changed = any(not torch.equal(seen["initial"][k], v) for k, v in seen["trained"].named_parameters())
    assert changed, "training must change the weights"

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["baseline"]["n"] == 4 and 0.0 <= saved["final"]["accuracy"] <= 1.0
    assert saved["train"]["global_step"] == 2 and results["final"] == saved["final"]
    assert saved["run"]["overrides"] == ["train.max_steps=2"] and saved["run"]["status"] == "success"
    assert saved["run"]["wall_time_s"] > 0
    assert saved["run"]["stages_done"] == stages  # results.json is rewritten after every stage
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "model" / "config.json").exists()
    assert len(read_jsonl(tmp_path / "samples_final.jsonl")) == 4
    events = [r["event"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert events.count("train") == 2 and events.count("eval") == 3 and events[-1] == "pipeline_end"


def test_failure_reaches_observers_and_keeps_results(orchestrator, tmp_path):
    orch, rec = orchestrator

    def broken_train(*args):
        raise RuntimeError("out of memory (simulated)")

    orch.train = broken_train
    with pytest.raises(RuntimeError, match="simulated"):
        orch.run(tmp_path)
    end = rec.events[-1]
    assert end[0] == "on_pipeline_end" and end[1]["status"] == "failed"
    assert isinstance(end[1]["error"], RuntimeError)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert "baseline" in saved and "final" not in saved  # what was measured before the failure is kept


def test_lora_run_saves_an_adapter(tiny_model_dir, tmp_path):
    cfg = compose(tiny_overrides(tiny_model_dir, tmp_path) + ["model.lora.enabled=true", "model.lora.r=2",
                                                             "eval.baseline=false", "train.max_steps=1"])
    results = build_pipeline(cfg).run(tmp_path)
    saved = {p.name for p in (tmp_path / "model").iterdir()}
    assert "adapter_config.json" in saved and "adapter_model.safetensors" in saved
    assert "model.safetensors" not in saved  # only the adapter: the base is not copied
    assert results["model"]["trainable_parameters"] < results["model"]["total_parameters"]
    assert "baseline" not in results and "final" in results


def test_save_model_false_writes_no_model(tiny_model_dir, tmp_path):
    cfg = compose(tiny_overrides(tiny_model_dir, tmp_path) + ["save_model=false", "train.max_steps=1",
                                                             "eval.baseline=false"])
    results = build_pipeline(cfg).run(tmp_path)
    assert not (tmp_path / "model").exists() and "model" not in results["artifacts"]
    assert (tmp_path / "results.json").exists()


def test_evaluation_only_pipeline(tiny_model_dir, tmp_path):
    """train and reward null: data -> model -> evaluation (what the benchmark runs for each model x task)."""
    overrides = [o for o in tiny_overrides(tiny_model_dir, tmp_path) if not o.startswith("train.")]
    cfg = compose(overrides + ["~train", "~reward", "eval.max_new_tokens=8"])
    pipeline = build_pipeline(cfg)
    recorder = Recorder()
    pipeline.observers["recorder"] = recorder
    results = pipeline.run(tmp_path)
    stages = [kw["stage"] for e, kw in recorder.events if e == "on_stage_start"]
    assert stages == ["setup", "data", "model", "rewards", "eval"]
    assert results["eval"]["n"] == 4 and "train" not in results and not (tmp_path / "model").exists()


def test_a_finished_run_is_not_run_again(tiny_model_dir, tmp_path):
    """resume=auto (the default) on a directory whose run finished: nothing is redone, the results stand."""
    cfg = compose(tiny_overrides(tiny_model_dir, tmp_path) + ["train.max_steps=1", "eval.baseline=false"])
    first = build_pipeline(cfg).run(tmp_path)
    pipeline = build_pipeline(cfg)
    recorder = Recorder()
    pipeline.observers["recorder"] = recorder
    again = pipeline.run(tmp_path)
    assert again == json.loads((tmp_path / "results.json").read_text()) and again["final"] == first["final"]
    assert recorder.events == []


def test_resume_null_refuses_a_directory_with_a_run(tiny_model_dir, tmp_path):
    from rlvr.errors import ConfigError

    (tmp_path / "results.json").write_text("{}")
    pipeline = build_pipeline(compose(tiny_overrides(tiny_model_dir, tmp_path) + ["resume=null"]))
    with pytest.raises(ConfigError, match="already holds a run and resume=null"):
        pipeline.run(tmp_path)


def test_resume_from_a_path_that_is_not_a_checkpoint_fails_before_anything_loads(tiny_model_dir, tmp_path):
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        build_pipeline(compose(tiny_overrides(tiny_model_dir, tmp_path) + [f"resume={tmp_path}"]))


def test_a_run_continues_only_with_its_own_settings(tiny_model_dir, tmp_path):
    from rlvr.errors import ConfigError

    base = tiny_overrides(tiny_model_dir, tmp_path) + ["train.max_steps=1", "eval.baseline=false"]
    build_pipeline(compose(base)).run(tmp_path)
    with pytest.raises(ConfigError, match=r"holds a run with other settings \(data.test_size: 4 -> 3\)"):
        build_pipeline(compose(base + ["data.test_size=3"])).run(tmp_path)


class Misspelt:
    """An observer whose one hook is misspelt, so it would never be called."""

    def on_train_logs(self, **_):
        pass


def test_every_group_is_checked_against_its_protocol_when_the_pipeline_is_built(tmp_path):
    """data, prompts, model, reward, train, eval and each observer (rlvr.interfaces): a component that does not fit
    its group fails when the pipeline is built, naming the key."""
    with pytest.raises(ConfigError, match=re.escape("observers.typo: Misspelt is no observer: on_train_logs is no "
                                                    "event (the events: on_pipeline_start, on_stage_start")):
        build_pipeline(compose([f"output_dir={tmp_path}",
                                "+observers.typo={_target_: tests.unit.orchestration.test_orchestrator.Misspelt}"]))
    pipeline = build_pipeline(compose(["observers=none", f"output_dir={tmp_path}"]))
    parts = {"data": pipeline.data, "prompts": pipeline.prompts, "model": pipeline.model, "eval": pipeline.evaluator,
             "reward": pipeline.reward, "train": pipeline.trainer}
    assert PipelineOrchestrator(**parts, observers={"console": ConsoleObserver()}, config={}).observers  # right kinds
    for key, bad, message in (
        ("prompts", "Q: {question}", "prompts: str does not implement PromptComponent"),
        ("reward", Misspelt(), "reward: Misspelt does not implement RewardComponent"),
        ("observers", {"quiet": object()}, "observers.quiet: object is no observer: it defines none of the events"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            PipelineOrchestrator(**{**parts, key: bad}, config={})
