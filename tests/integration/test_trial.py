"""``experiment=smoke`` is a trial that fits every algorithm: composed with each ``train`` option (and with the
stages of ``pipeline.stages``), it caps each loop's sizes where the loop has them and runs two steps, on a tiny
model."""

from __future__ import annotations

import pytest
import yaml

from rlvr.orchestration import build_pipeline
from tests.conftest import REPO, compose
from tests.unit.train.test_preference_loops import dataset_overrides, preference_file

TRAIN_OPTIONS = sorted(p.stem for p in (REPO / "conf" / "train").glob("*.yaml"))


def trial(model_dir, run_dir, *extra: str, experiment: str = "smoke") -> list[str]:
    """The trial on the tiny model, with fewer rows than the embedded model's trial (the sizes under test stay)."""
    return [f"experiment={experiment}", f"model.name_or_path={model_dir}", "model.dtype=float32", "observers=none",
            "data.train_size=16", "data.test_size=4", f"output_dir={run_dir}", *extra]


@pytest.mark.parametrize("train", TRAIN_OPTIONS)
def test_the_trial_runs_every_train_option(tiny_model_dir, tmp_path, train):
    # a reward model scores pairs, it does not generate: held-out pairs from the policy's samples
    evaluator = ["eval=pairwise", "eval.pairs=samples"] if train == "reward_model" else []
    if train == "kto":  # a tiny random model's samples are all wrong: nothing to label desirable, so a dataset's
        evaluator = dataset_overrides(preference_file(tmp_path / "prefs.jsonl"))
    results = build_pipeline(compose(trial(tiny_model_dir, tmp_path, f"train={train}", *evaluator))).run(tmp_path)
    assert results["run"]["status"] == "success"
    if "train" not in results:  # a loop run in rounds (expert iteration): each round a stage, two in a trial
        assert [s["name"] for s in results["stages"]] == ["round1", "round2"]
        trained = [(s["train"], s["history"]) for s in results["stages"] if s["train"]["global_step"]]
        assert trained, "no round trained"  # a round none of whose samples is correct trains nothing, and says so
    else:
        trained = [(results["train"], results["train_history"])]
    for summary, history in trained:
        assert summary["global_step"] == 2 and history[-1]["step"] == 2 and "loss" in history[-1]
    assert results["final"]["n"] > 0 and not (tmp_path / "model").exists()  # a trial saves no model
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]
    assert (saved["max_steps"], saved["max_completion_length"]) == (2, 16)  # the caps, on record


def test_the_trial_runs_a_reward_model_ensemble(tiny_model_dir, tmp_path):
    """train.ensemble_size=2: two heads on one body, trained two steps together; best-of-N picks by their mean
    minus the uncertainty penalty times their spread."""
    cfg = compose(trial(tiny_model_dir, tmp_path, "train=reward_model", "train.ensemble_size=2", "eval=best_of_n",
                        "eval.n=4", "eval.uncertainty_penalty=0.5"))
    results = build_pipeline(cfg).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    history = results["train_history"]
    assert history[-1]["step"] == 2 and "loss" in history[-1]
    assert all(r["ensemble/std"] > 0 for r in history if "ensemble/std" in r) and "ensemble/std" in history[-1]
    assert results["final"]["n"] > 0 and {"pass@1", "maj@4"} <= set(results["final"]["extra"])


def test_the_trial_runs_every_stage_of_a_staged_experiment(tiny_model_dir, tmp_path):
    cfg = compose(trial(tiny_model_dir, tmp_path, experiment="[sft_then_grpo,smoke]"))
    results = build_pipeline(cfg).run(tmp_path)
    assert [(s["name"], s["train"]["global_step"]) for s in results["stages"]] == [("sft", 2), ("grpo", 2)]
    assert results["run"]["status"] == "success"


def test_the_trial_caps_sizes_and_keeps_smaller_ones():
    pipeline = build_pipeline(compose(["experiment=smoke", "train=ppo", "train.max_steps=1", "train.ppo_epochs=3"]))
    ppo = pipeline.config["train"]
    assert (ppo["max_steps"], ppo["prompts_per_step"], ppo["mini_batch_size"], ppo["ppo_epochs"]) == (1, 4, 4, 3)
    assert "num_generations" not in ppo  # a cap only where the loop has the setting
    assert pipeline.config["eval"]["max_new_tokens"] == 16  # what reads a capped size reads the cap
    prm = build_pipeline(compose(["experiment=smoke", "train=prm", "train.rollouts=1"])).config["train"]
    assert (prm["label_prompts"], prm["solutions_per_prompt"], prm["rollouts"]) == (4, 2, 1)  # a PRM's labelling
