"""The shipped experiments that cannot run in the test suite compose, validate and build without loading a model:
the GPU-sized GSM8K recipe, and the CPU DPO-from-samples experiment (measured in the README); the self-improvement
options compose with each other and with the loops they serve."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlvr.data.refine import Refinement
from rlvr.orchestration import build_pipeline
from tests.conftest import REPO, compose


def test_gsm8k_qwen_grpo_lora_composes_and_builds_without_loading_the_model(tmp_path):
    pipeline = build_pipeline(compose(["experiment=gsm8k_qwen_grpo_lora", f"output_dir={tmp_path}"]))
    model, train = pipeline.model, pipeline.trainer
    assert (model.name_or_path, model.dtype, model.lora.enabled, model.lora.r, model.lora.alpha) == (
        "Qwen/Qwen2.5-0.5B-Instruct", "bfloat16", True, 16, 64)
    assert (pipeline.data.hub_id, pipeline.data.task) == ("openai/gsm8k", "gsm8k")
    assert pipeline.prompts.answer_format.answer_tag == "answer"
    args = train.config(str(tmp_path), seed=0, reward_weights=[1.0, 0.2], bf16=True)
    assert (args.learning_rate, args.lr_scheduler_type.value, args.weight_decay, args.adam_beta2) == (
        5e-6, "cosine", 0.1, 0.99)
    assert (args.num_generations, args.per_device_train_batch_size * args.gradient_accumulation_steps) == (16, 64)
    assert (args.beta, args.max_grad_norm, args.max_completion_length, args.bf16) == (0.04, 0.1, 512, True)
    assert pipeline.evaluator.max_new_tokens == 512  # evaluation follows the training budget
    assert not any(tmp_path.iterdir())  # nothing ran


def test_gsm8k_qwen_grpo_lora_prints_with_cfg_job():
    out = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "experiment=gsm8k_qwen_grpo_lora",
                          "--cfg", "job"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "name_or_path: Qwen/Qwen2.5-0.5B-Instruct" in out.stdout and "_target_: rlvr.train.GRPOLoop" in out.stdout


def test_dpo_from_samples_samples_then_trains_dpo(tmp_path):
    pipeline = build_pipeline(compose(["experiment=dpo_from_samples", f"output_dir={tmp_path}"]))
    s = pipeline.trainer.settings
    assert type(pipeline.trainer).__name__ == "DPOLoop" and s["preferences"] == "samples"
    assert pipeline.model.name_or_path.startswith("embedded://")


@pytest.mark.parametrize("train", ["dpo", "kto", "simpo", "reward_model"])
def test_every_preference_loop_takes_refined_pairs(train):
    evaluation = ["eval=pairwise"] if train == "reward_model" else []  # a reward model does not generate
    pipeline = build_pipeline(compose([f"train={train}", "train.preferences=refine", "train.refine.rounds=2",
                                       "train.refine.feedback=verifier", *evaluation]))
    assert pipeline.trainer.preferences == "refine"
    assert pipeline.trainer.refine == Refinement(rounds=2, feedback="verifier")


def test_self_improvement_options_compose_together(tmp_path):
    """Expert iteration, refining its failures against a constitution in a file, evaluated by the validator (an NLI
    model by hub id, nothing loaded) and by critique and refinement, gated on the validator's measures."""
    constitution = tmp_path / "constitution.yaml"
    constitution.write_text("- Each step is computed correctly.\n- The answer is stated once.\n")
    pipeline = build_pipeline(compose([
        "train=expert_iteration", "train.rounds=2", f"train.refine.principles={constitution}", "eval=validated",
        "+eval.refine={rounds: 2, feedback: verifier}", "eval.validator.nli=cross-encoder/nli-deberta-v3-small",
        "pipeline.gate.max_increase.nli_contradiction_rate=0.1", "pipeline.gate.max_decrease.self_consistency=0.1"]))
    assert pipeline.trainer.refine.principles == ["Each step is computed correctly.", "The answer is stated once."]
    assert pipeline.evaluator.refine == Refinement(rounds=2, feedback="verifier")
    assert {"nli_contradiction_rate", "ref_perplexity", "self_consistency", "refine_accuracy_2"} <= (
        pipeline.evaluator.measures())
    assert [s.name for s in pipeline.stages(tmp_path)] == ["round1", "round2"]
    self_play = build_pipeline(compose(["experiment=grpo_self_play"]))
    assert type(self_play.trainer).__name__ == "GRPOLoop" and self_play.trainer.rounds == 3
    assert self_play.plan.gate.watched == {"accuracy", "repetition_rate", "ref_perplexity", "self_consistency"}
