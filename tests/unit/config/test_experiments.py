"""The shipped experiments that cannot run in the test suite compose, validate and build without loading a model:
the GPU-sized GSM8K recipe, and the CPU DPO-from-samples experiment (measured in the README)."""

from __future__ import annotations

import subprocess
import sys

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
