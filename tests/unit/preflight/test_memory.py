"""The memory estimate: shapes from the meta device match the real model (parameters, and LoRA's trainable count as
PEFT makes it), each part follows its formula, the launches divide what they shard, a batch that cannot fit gets
changes that fit, and a 0.5B and a 7B model on paper (shapes written here, as in their config.json: no hub access)."""

from __future__ import annotations

import pytest

from rlvr.preflight.memory import (
    GIB,
    Launch,
    Workload,
    activation_bytes,
    estimate,
    launch_from,
    shape_of,
    suggestions,
    trainable_params,
    weight_bytes,
)
from tests.conftest import REPO


def qwen(size: str):
    """Qwen2.5-0.5B and -7B (Instruct) as their config.json describes them."""
    from transformers import Qwen2Config

    if size == "0.5B":
        return Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                           num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                           tie_word_embeddings=True)
    return Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
                       tie_word_embeddings=False)


def grpo(dtype: str = "bfloat16", micro: int = 8, prompt: int = 256, completion: int = 512, **kw) -> Workload:
    """A GRPO step on a GPU: ``micro`` sequences per micro-batch through TRL's fused head over the completion, a
    rollout of the same rows."""
    return Workload(dtype=dtype, micro_batch=micro, prompt_tokens=prompt, completion_tokens=completion,
                    logit_tokens=completion, fused_head=True, rollout_rows=micro, rollout_tokens=prompt + completion,
                    **kw)


def test_shapes_from_the_meta_device_match_the_real_model(tiny_model_dir):
    from transformers import AutoConfig, AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    shape = shape_of(AutoConfig.from_pretrained(tiny_model_dir))
    assert shape.params == sum(p.numel() for p in model.parameters())  # tied embeddings counted once
    assert (shape.layers, shape.hidden, shape.intermediate, shape.kv_width, shape.context) == (2, 32, 64, 16, 512)
    assert shape.output_layer == "lm_head" and len(shape.linears) == 2 * 7 + 1


@pytest.mark.parametrize("targets", ["all-linear", ("q_proj", "v_proj")])
def test_lora_trainable_parameters_are_what_peft_makes(tiny_model_dir, targets):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=targets if isinstance(targets, str) else list(targets)))
    real = sum(p.numel() for p in model.parameters() if p.requires_grad)
    shape = shape_of(AutoConfig.from_pretrained(tiny_model_dir))
    assert trainable_params(shape, grpo(lora_r=4, lora_targets=targets)) == real


def test_each_part_follows_its_formula():
    shape = shape_of(qwen("0.5B"))
    assert 494_000_000 < shape.params < 494_100_000
    full = estimate(shape, grpo(dtype="float32"), runtime=0)
    p = shape.params
    assert full.parts["weights"] == 4 * p and full.parts["gradients"] == 4 * p and full.parts["optimizer"] == 8 * p
    bf16 = estimate(shape, grpo(), runtime=0)
    assert bf16.parts["weights"] == 2 * p and bf16.parts["optimizer"] == 4 * p
    assert estimate(shape, grpo(optimizer="adamw_8bit"), runtime=0).parts["optimizer"] == 2 * p
    lora = estimate(shape, grpo(lora_r=16), runtime=0)
    assert lora.parts["gradients"] == 4 * lora.trainable and lora.trainable < p // 50  # fp32 adapter, under 2%
    linear = sum(i * o for name, i, o in shape.linears if name != "lm_head")  # the tied lm_head is the embedding
    adapter = 4 * lora.trainable
    # linear layers in half a byte plus an fp32 scale per 64 weights; the embeddings stay 16-bit
    assert weight_bytes(shape, grpo(quant_bits=4, lora_r=16)) == int(linear * 0.5625) + (p - linear) * 2 + adapter
    assert estimate(shape, grpo(reference=True), runtime=0).parts["reference"] == 2 * p
    # activations grow with the batch; one tile of TRL's fused head (positions x vocabulary, with fp32 temporaries)
    # does not; checkpointing keeps each layer's input and one layer's worth
    logits = 4096 * 32768 * (2 + 8)
    layers = activation_bytes(shape, grpo()) - logits
    assert activation_bytes(shape, grpo(micro=16)) - logits == 2 * layers
    assert activation_bytes(shape, grpo(gradient_checkpointing=True)) - logits < layers / 4
    # a group's prompt once: 8 completions of one prompt run 256 + 8 x 512 tokens instead of 8 x (256 + 512)
    assert grpo(shared_prompts=1).tokens == 256 + 8 * 512 and grpo().tokens == 8 * 768
    kv = estimate(shape, grpo(micro=8), runtime=0).parts["kv_cache"]
    assert kv == 8 * 768 * 24 * 2 * 128 * 2  # rows x tokens x layers x (k, v) x kv width x bytes


def test_launches_divide_what_they_shard():
    shape, work = shape_of(qwen("7B")), grpo()
    one = estimate(shape, work, Launch(), runtime=0)
    ddp = estimate(shape, work, Launch("ddp", 8), runtime=0)
    fsdp = estimate(shape, work, Launch("fsdp", 8), runtime=0)
    zero2 = estimate(shape, work, Launch("deepspeed", 8, 2), runtime=0)
    zero3 = estimate(shape, work, Launch("deepspeed", 8, 3), runtime=0)
    assert ddp.parts["weights"] == one.parts["weights"] and ddp.parts["ddp_buckets"] == one.parts["gradients"]
    assert fsdp.parts["weights"] == one.parts["weights"] // 8 and fsdp.parts["optimizer"] == one.parts["optimizer"] // 8
    assert zero2.parts["weights"] == one.parts["weights"] and zero2.parts["gradients"] == one.parts["gradients"] // 8
    assert zero3.parts["weights"] == one.parts["weights"] // 8
    # DeepSpeed keeps fp32 Adam states and an fp32 master copy of bf16 weights: 12 bytes a parameter, sharded
    assert zero3.parts["optimizer"] == 12 * shape.params // 8
    assert "generation gathers the whole model" in zero3.notes[0]  # TRL gathers the weights to generate
    assert zero3.parts["gathered"] >= one.parts["weights"] - zero3.parts["weights"]


@pytest.mark.parametrize(("name", "kind", "stage"), [("ddp", "ddp", 0), ("fsdp", "fsdp", 0), ("zero2", "deepspeed", 2),
                                                     ("zero3", "deepspeed", 3)])
def test_the_shipped_launch_configs_are_read(name, kind, stage):
    launch = launch_from(str(REPO / "launch" / f"{name}.yaml"), None, env={})
    assert (launch.kind, launch.zero_stage, launch.processes) == (kind, stage, 8)
    assert launch_from(str(REPO / "launch" / f"{name}.yaml"), 2, env={}).processes == 2


def test_the_launcher_environment_is_read():
    assert launch_from(None, None, env={}) == Launch()
    assert launch_from(None, None, env={"WORLD_SIZE": "4"}).kind == "ddp"
    env = {"WORLD_SIZE": "8", "ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}
    assert launch_from(None, None, env=env) == Launch("deepspeed", 8, 3, "this launcher")


def test_a_batch_that_cannot_fit_gets_changes_that_fit():
    shape = shape_of(qwen("0.5B"))
    work = grpo(dtype="float32", micro=64, prompt=512, completion=1024)
    budget = 22 * GIB
    assert estimate(shape, work, runtime=GIB // 2).peak > budget
    fixes = suggestions(shape, work, Launch(), GIB // 2, budget, gpus=8)
    assert fixes and all(e.peak <= budget for _, e in fixes)
    assert any("gradient_checkpointing" in name for name, _ in fixes)


@pytest.mark.parametrize("size", ["0.5B", "7B"])
def test_on_paper_fsdp_and_zero3_fit_where_one_gpu_does_not(size):
    """Full fine-tuning in bf16, 8 sequences of 256 + 512 tokens per micro-batch: the 7B model does not fit one
    80 GiB GPU (weights, gradients and AdamW are 57 GiB, the activations 33 GiB more), and fits sharded over 8
    (FSDP or ZeRO-3, which gather the whole model to generate); the 0.5B model fits one 24 GiB GPU."""
    shape = shape_of(qwen(size))
    work = grpo()
    one = estimate(shape, work)
    fsdp = estimate(shape, work, Launch("fsdp", 8))
    zero3 = estimate(shape, work, Launch("deepspeed", 8, 3))
    if size == "7B":
        assert 7_600_000_000 < shape.params < 7_700_000_000
        assert one.parts["weights"] + one.parts["gradients"] + one.parts["optimizer"] > 56 * GIB
        assert one.peak > 0.9 * 80 * GIB > max(fsdp.peak, zero3.peak)
        assert estimate(shape, grpo(gradient_checkpointing=True)).peak < 0.9 * 80 * GIB  # checkpointing alone fits
    else:
        assert one.peak < 0.9 * 24 * GIB
    assert fsdp.peak < one.peak and zero3.peak < one.peak
