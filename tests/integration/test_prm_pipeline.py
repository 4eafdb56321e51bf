"""A process reward model end to end on a tiny model, as a user runs it: train=prm (Math-Shepherd labels from the
verifier, the PRM trained and evaluated by best-of-N), then a policy loop rewarded by the verifier and the PRM
(reward=verifier_prm pointing at the first run's model/), logging the PRM's reward and failures. And train=prm at
smoke size on the embedded SmolLM2-135M."""

from __future__ import annotations

import json

import pytest

from rlvr.orchestration import build_pipeline
from tests.conftest import compose, tiny_overrides


@pytest.fixture(scope="module")
def prm_run(tiny_model_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("prm")
    shrunk = [o for o in tiny_overrides(tiny_model_dir, run) if not o.startswith("train.num_generations")]
    cfg = compose([*shrunk, "train=prm", "train.label_prompts=4", "train.solutions_per_prompt=2", "train.rollouts=2",
                   "train.step_separator=' '", "eval.n=4"])
    return run, build_pipeline(cfg).run(run)


def test_train_prm_labels_trains_and_reranks(prm_run):
    run, results = prm_run
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    (cache,) = (run / "checkpoints").glob("step_labels-*.jsonl")
    labelled = [json.loads(line) for line in cache.read_text().splitlines()]
    assert [r["problem"] for r in labelled] == [0, 1, 2, 3]
    for solution in (s for r in labelled for s in r["solutions"]):
        assert len(solution["labels"]) == len(solution["steps"])
    assert results["baseline"]["n"] == results["final"]["n"] == 4
    assert set(results["final"]["extra"]) >= {"pass@1", "pass@4", "maj@4"}
    assert json.loads((run / "model" / "config.json").read_text())["architectures"] == ["LlamaForTokenClassification"]


@pytest.mark.parametrize("train", ["grpo", "ppo"])
def test_a_policy_loop_is_rewarded_by_the_verifier_and_the_prm(prm_run, tiny_model_dir, tmp_path, train):
    run, _ = prm_run
    overrides = tiny_overrides(tiny_model_dir, tmp_path)
    if train == "ppo":
        overrides = [o for o in overrides if not o.startswith(("train.num_generations", "train.per_device"))]
        overrides += ["train=ppo", "train.prompts_per_step=4", "train.mini_batch_size=2"]
    cfg = compose([*overrides, "reward=verifier_prm", f"reward.functions.prm.path={run / 'model'}",
                   "reward.weights.prm=0.5", "reward.isolation=thread"])
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    for step in results["train_history"]:
        assert 0 < step["rewards/prm/mean"] < 1 and step["reward_failures/prm"] == 0


@pytest.mark.slow
def test_train_prm_at_smoke_size_on_the_embedded_model(tmp_path):
    from transformers import AutoModelForTokenClassification

    """experiment=smoke's sizes (its GRPO settings are no settings of train=prm): 2 steps, 16-token completions."""
    cfg = compose(["train=prm", "train.max_steps=2", "train.per_device_train_batch_size=4",
                   "train.max_completion_length=16", "data.train_size=32", "data.test_size=4", "train.label_prompts=2",
                   "train.solutions_per_prompt=2", "train.rollouts=2", "train.save_steps=0", "eval.n=2",
                   "observers=none", f"output_dir={tmp_path}"])
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    assert results["final"]["n"] == 4 and 0 <= results["final"]["accuracy"] <= 1
    assert results["final"]["extra"]["pass@1"] == results["baseline"]["accuracy"]  # the same samples, reranked
    (cache,) = (tmp_path / "checkpoints").glob("step_labels-*.jsonl")
    assert len(cache.read_text().splitlines()) == 2
    model = AutoModelForTokenClassification.from_pretrained(tmp_path / "model")
    assert model.num_parameters() > 100_000_000 and model.config.step_separator == "\n"
