"""The model component: LoRA really applied from a composed (OmegaConf) config, saving and reloading (4/8-bit
bases: test_quantized.py)."""

from __future__ import annotations

import os

import pytest
import torch

from rlvr.model import LoraSettings, count_parameters
from tests.conftest import build_group, compose


def model_from_config(tiny_model_dir, *overrides):
    cfg = compose([f"model.name_or_path={tiny_model_dir}", *overrides])
    return build_group(cfg, "model")


def test_lora_from_composed_config_changes_trainable_parameters(tiny_model_dir):
    """The seeds' orchestrator tested isinstance(cfg, dict) on an OmegaConf node and never applied LoRA."""
    full_model, _ = model_from_config(tiny_model_dir).load()
    lora_model, _ = model_from_config(tiny_model_dir, "model.lora.enabled=true", "model.lora.r=4").load()
    full_trainable, full_total = count_parameters(full_model)
    lora_trainable, lora_total = count_parameters(lora_model)
    assert full_trainable == full_total
    assert 0 < lora_trainable < full_trainable / 2
    assert lora_total > full_total  # adapters were added on top of the frozen base
    assert type(lora_model).__name__ == "PeftModelForCausalLM"
    r = {m.r["default"] for m in lora_model.modules() if hasattr(m, "r") and isinstance(m.r, dict)}
    assert r == {4}


def test_lora_settings_arrive_as_dataclass(tiny_model_dir):
    component = model_from_config(tiny_model_dir, "model.lora.enabled=true")
    assert isinstance(component.lora, LoraSettings) and component.lora.enabled


def test_tokenizer_pads_left_for_batched_generation(tiny_model_dir):
    _, tok = model_from_config(tiny_model_dir).load()
    assert tok.padding_side == "left" and tok.pad_token is not None


def test_save_and_reload_lora_adapter(tiny_model_dir, tmp_path):
    from peft import AutoPeftModelForCausalLM

    component = model_from_config(tiny_model_dir, "model.lora.enabled=true", "model.lora.r=2")
    model, tok = component.load()
    with torch.no_grad():  # make the adapter non-trivial so the round trip is checked for real
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    component.save(model, tok, str(tmp_path / "model"))
    assert (tmp_path / "model" / "adapter_config.json").exists()
    reloaded = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "model")
    ids = torch.tensor([[5, 6, 7, 8]])
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits)


def test_save_full_model_reloads_with_transformers(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    component = model_from_config(tiny_model_dir)
    model, tok = component.load()
    component.save(model, tok, str(tmp_path / "model"))
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    ids = torch.tensor([[5, 6, 7]])
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits)


def test_gradient_checkpointing_is_enabled(tiny_model_dir):
    model, _ = model_from_config(tiny_model_dir, "model.gradient_checkpointing=true").load()
    assert model.is_gradient_checkpointing


def test_embedded_name_resolves_to_cache(monkeypatch, tmp_path):
    from rlvr.model import embedded

    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    target = tmp_path / "models" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"")
    assert embedded.resolve("embedded://smollm2-135m-instruct") == str(target)  # cached: no download
    with pytest.raises(ValueError, match="Unknown embedded model"):
        embedded.resolve("embedded://nope")


CONVERT_SLOWLY = """
import sys, time
from pathlib import Path
from rlvr.model import embedded

def convert(gguf, target):  # stands in for the GGUF conversion: slow, counted, writes a complete checkpoint
    with open(sys.argv[1], "a") as log:
        log.write("converted\\n")
    time.sleep(1.0)
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    (partial / "model.safetensors").write_bytes(b"")
    partial.replace(target)

embedded._convert = convert
print(embedded.resolve("embedded://smollm2-135m-instruct"))
"""


def test_jobs_started_together_convert_the_embedded_model_once(tmp_path):
    """A parallel sweep (or parallel tests) on a fresh machine: every process resolves the model at once; one
    converts, the others wait for it and use its cache (before the lock they overwrote each other's half-written
    checkpoint)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"")
    env = {**os.environ, "RLVR_CACHE_DIR": str(tmp_path / "cache"), "RLVR_SMOLLM2_GGUF": str(gguf),
           "PYTHONPATH": str(REPO / "src")}
    counter = tmp_path / "conversions.log"
    procs = [subprocess.Popen([sys.executable, "-c", CONVERT_SLOWLY, str(counter)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in outputs]
    target = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    assert {out.strip() for out, _ in outputs} == {str(target)}
    assert counter.read_text().splitlines() == ["converted"]
    assert (target / "config.json").exists()
