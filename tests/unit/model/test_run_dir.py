"""Run directories as models: ``HFModel.load()`` on a run's ``model/``, a LoRA adapter merged into its base
(named by the run's config.yaml, else by the adapter), a plain checkpoint otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from rlvr.errors import ConfigError
from rlvr.model import HFModel
from rlvr.model.hf import locate, run_config


def make_run(path: Path, base: str, adapter_from: Path | None = None, full_from: Path | None = None) -> Path:
    """A run directory as the pipeline writes it: config.yaml (the run's model.name_or_path) and model/."""
    path.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"model": {"name_or_path": base}}), path / "config.yaml")
    (adapter_from or full_from).rename(path / "model")
    return path


def lora_adapter(base_dir: Path, out: Path) -> torch.nn.Module:
    """Save a LoRA adapter over ``base_dir`` whose weights change the model's output; returns the PEFT model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B starts at zero: make the adapter matter
            torch.nn.init.normal_(p, std=0.5)
    model.save_pretrained(out)
    return model.eval()


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def test_lora_run_loads_merged_on_the_base_its_config_names(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    peft_model = lora_adapter(tiny_model_dir, tmp_path / "adapter")
    # PEFT recorded the base too; the run's config.yaml wins (a run trained from embedded:// names that).
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "x/y"}))
    run = make_run(tmp_path / "run", str(tiny_model_dir), adapter_from=tmp_path / "adapter")
    assert locate(str(run)).weights == str(tiny_model_dir) and locate(str(run)).adapter == str(run / "model")

    model, tok = HFModel(name_or_path=str(run), dtype="float32").load()
    ids = tok("1 + 2 =", return_tensors="pt")["input_ids"]
    assert not hasattr(model, "peft_config")  # merged: a plain transformers model
    torch.testing.assert_close(logits(model, ids), logits(peft_model, ids), atol=1e-4, rtol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.allclose(logits(model, ids), logits(base, ids), atol=1e-3)
    assert tok.padding_side == "left"


def test_bare_adapter_directory_uses_the_base_peft_recorded(tmp_path, tiny_model_dir):
    lora_adapter(tiny_model_dir, tmp_path / "adapter")
    source = locate(str(tmp_path / "adapter"))
    assert (source.weights, source.adapter, source.tokenizer) == (str(tiny_model_dir), str(tmp_path / "adapter"),
                                                                  str(tiny_model_dir))
    assert run_config(tmp_path / "adapter") is None


def test_full_weights_run_loads_its_model_directory(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model, tok = HFModel(name_or_path=str(tiny_model_dir)).load()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # "trained": different from the base
    model.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    run = make_run(tmp_path / "run", str(tiny_model_dir), full_from=tmp_path / "saved")
    assert run_config(run) == run / "config.yaml"
    loaded, _ = HFModel(name_or_path=str(run)).load()
    ids = torch.tensor([[5, 6, 7]])
    torch.testing.assert_close(logits(loaded, ids), logits(model, ids))
    assert not torch.allclose(logits(loaded, ids), logits(AutoModelForCausalLM.from_pretrained(tiny_model_dir), ids))


def test_hub_ids_and_plain_checkpoints_pass_through(tiny_model_dir):
    assert locate("Qwen/Qwen2.5-0.5B-Instruct").weights == "Qwen/Qwen2.5-0.5B-Instruct"
    assert locate(str(tiny_model_dir)).adapter is None and run_config(tiny_model_dir) is None


def test_adapter_without_a_base_is_a_clear_error(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="names no base_model_name_or_path"):
        locate(str(tmp_path / "adapter"))


def test_a_local_path_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(ConfigError, match="no-such-run: no such directory"):
        locate(str(tmp_path / "no-such-run"))


class _Answer:
    def __init__(self, status_code):
        self.status_code = status_code


@pytest.mark.parametrize("offline, answer, message", [
    (True, None, "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
    (False, "unreachable", "the hub did not answer within 2 s"),
    (False, 404, "no such model on the hub"),
])
def test_a_hub_id_that_cannot_load_fails_in_one_line_without_retrying(monkeypatch, offline, answer, message):
    import time

    import requests
    from huggingface_hub import constants

    from rlvr.model.hf import check_hub_id

    def head(url, timeout, **_):
        assert timeout <= 2 and url.endswith("/api/models/nobody/no-such-model")
        if answer == "unreachable":
            raise requests.ConnectionError("no network")
        return _Answer(answer)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(requests, "head", head)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=message):
        check_hub_id("nobody/no-such-model")
    assert time.monotonic() - start < 2
