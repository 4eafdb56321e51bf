"""train=ppo (ours) through the pipeline on a tiny model: it trains, logs, evaluates like every other option,
and a run stopped after a checkpoint and resumed ends with the same weights and per-step rewards."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from rlvr.train import PPOLoop
from rlvr.train.ppo import _completion_mask
from tests.conftest import compose, read_jsonl
from tests.unit.orchestration.test_orchestrator import SIGNAL


def overrides(model_dir, run_dir, *extra):
    return [f"model.name_or_path={model_dir}", "model.dtype=float32", "data.train_size=16", "data.test_size=4",
            "train=ppo", "train.max_steps=3", "train.prompts_per_step=4", "train.mini_batch_size=2",
            "train.max_completion_length=8", "train.learning_rate=1e-3", "train.save_steps=1", "eval.batch_size=4",
            "eval.max_new_tokens=8", "eval.eval_steps=2", "observers=none", SIGNAL,
            "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}", f"output_dir={run_dir}", *extra]


def run(model_dir, run_dir, *extra):
    return build_pipeline(compose(overrides(model_dir, run_dir, *extra))).run(run_dir)


def test_ppo_trains_through_the_pipeline(tiny_model_dir, tmp_path):
    results = run(tiny_model_dir, tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 3
    train = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    for r in train:
        assert {"reward", "kl", "loss", "value_loss", "clipfrac", "approx_kl", "completions/mean_length"} <= set(r)
    assert [e["name"] for e in results["during_training"]] == ["step_2"] and results["final"]["n"] == 4
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "model" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (tmp_path / "checkpoints" / "checkpoint-3" / "ppo_state.pt").is_file()


def test_a_resumed_ppo_run_equals_an_uninterrupted_one(tiny_model_dir, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run(tiny_model_dir, whole)
    run(tiny_model_dir, cut)
    # as if killed after step 2's checkpoint: no checkpoint-3, no model, an unfinished results.json
    shutil.rmtree(cut / "checkpoints" / "checkpoint-3")
    shutil.rmtree(cut / "model")
    results = json.loads((cut / "results.json").read_text())
    results["run"]["status"] = "failed"
    (cut / "results.json").write_text(json.dumps(results))
    results = run(tiny_model_dir, cut)  # the same command again: resume=auto
    assert results["train"]["resumed_from_step"] == 2
    a, b = (load_file(d / "model" / "model.safetensors") for d in (whole, cut))
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    rewards = [[r["reward"] for r in read_jsonl(d / "metrics.jsonl") if r["event"] == "train"] for d in (whole, cut)]
    assert rewards[0] == pytest.approx(rewards[1], abs=1e-6)  # steps 1-2 kept, step 3 redone: once each


def test_the_completion_mask_ends_at_the_first_eos():
    completion = torch.tensor([[5, 6, 2, 0, 0], [5, 5, 5, 5, 5], [2, 0, 0, 0, 0]])
    assert _completion_mask(completion, {2}).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


@pytest.mark.parametrize("settings, message", [
    ({"prompts_per_step": 6, "mini_batch_size": 4}, "multiple of train.mini_batch_size"),
    ({"gamma": 1.5}, "'train.gamma' must be in [0, 1], got 1.5."),
    ({"kl_coef": -1.0}, "'train.kl_coef' must be >= 0, got -1.0."),
])
def test_bad_settings_fail_at_construction(settings, message):
    """A single setting out of its range fails by the signature's check (as in a config); a rule between two
    settings by the constructor's own."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PPOLoop(**settings)


def test_results_record_the_ppo_settings(tiny_model_dir, tmp_path):
    pipeline = build_pipeline(compose(overrides(tiny_model_dir, tmp_path, "train.kl_estimator=k3")))
    assert pipeline.config["train"]["kl_estimator"] == "k3" and pipeline.config["train"]["_target_"].endswith("PPOLoop")
    assert json.dumps(pipeline.config)  # plain values only
