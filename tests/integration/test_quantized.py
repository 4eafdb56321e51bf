"""QLoRA on CPU: the default pipeline (reasoning-gym data, the default rewards, GRPO, held-out evaluation) on the
embedded SmolLM2-135M loaded in 4 and in 8 bits with a LoRA adapter, rolled out by our engine and by TRL's
``generate``; one training step of four completions, smoke-sized because bitsandbytes' CPU backend de-quantises
every weight for every product (about 3 minutes a step at the smoke overlay's size, measured 2026-12-04).

The run must succeed, evaluate before and after, train the adapter only (the 4/8-bit base stays frozen and
quantized) and save it as a LoRA checkpoint."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from rlvr.orchestration import build_pipeline
from tests.conftest import compose, read_jsonl
from tests.unit.orchestration.test_orchestrator import SIGNAL

SMOKE = ["experiment=smoke", "model.lora.enabled=true", "model.lora.r=4", "train.max_steps=1", "train.save_steps=1",
         "train.per_device_train_batch_size=4", "train.num_generations=4", "train.max_completion_length=8",
         "data.test_size=2", "observers=none", "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}", SIGNAL]


@pytest.mark.slow
@pytest.mark.parametrize(("bits", "rollout"), [(b, r) for b in ("4bit", "8bit") for r in ("engine", "trl")])
def test_quantized_lora_runs_the_default_pipeline_on_the_embedded_model(tmp_path, bits, rollout):
    pipeline = build_pipeline(compose(SMOKE + [f"model.quant.load_in_{bits}=true", f"train.rollout={rollout}",
                                               f"output_dir={tmp_path}"]))
    results = pipeline.run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 1
    assert results["baseline"]["n"] == results["final"]["n"] == 2
    model = results["model"]
    assert 0 < model["trainable_parameters"] < model["total_parameters"] / 50  # the adapter only
    (step,) = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert step["reward_std"] > 0  # the variety reward differs inside a group: the adapter gets a gradient
    assert ("rollout/seconds" in step) == (rollout == "engine")
    checkpoint = tmp_path / "checkpoints" / "checkpoint-1"
    adapter = json.loads((checkpoint / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["base_model_name_or_path"]
    weights = load_file(str(checkpoint / "adapter_model.safetensors"))
    trained = [k for k, v in weights.items() if "lora_B" in k and v.abs().max() > 0]  # lora_B starts at zero
    assert trained and all("lora_" in k for k in weights)
