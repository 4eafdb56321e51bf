"""The benchmark: device assignment (one GPU per worker, right for GPU 1 and up), work units, model
resolution (hub id, checkpoint, run with full weights or LoRA), the spawned-worker path, and one small real
run on the embedded model that writes every file."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlvr.benchmark import (
    Benchmark,
    Job,
    ModelSource,
    load_model,
    resolve_model,
    work_units,
    worker_devices,
)
from rlvr.config import ConfigError, load_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench_config(tmp_path: Path, models: list[str], tasks: str = "[chain_sum,leg_counting]", *extra: str):
    return load_config([f"models=[{','.join(models)}]", f"tasks={tasks}", "data.test_size=4", "eval.max_new_tokens=16",
                        "eval.batch_size=4", f"output_dir={tmp_path / 'bench'}", *extra], config_name="benchmark")


# --- devices and work units ------------------------------------------------------------------------------------
def test_each_worker_gets_exactly_one_device_in_the_visible_set():
    assert worker_devices("auto", None, 4) == ["0", "1", "2", "3"]
    # Indices refer to what this process sees: GPU 1 under CUDA_VISIBLE_DEVICES=4,6 is physical GPU 6.
    assert worker_devices([1], "4,6", 2) == ["6"]
    assert worker_devices("auto", "GPU-aa,GPU-bb", 2) == ["GPU-aa", "GPU-bb"]
    assert worker_devices("cpu", None, 4) == []
    assert worker_devices("auto", None, 0) == []
    with pytest.raises(ConfigError, match="not visible"):
        worker_devices([2], None, 2)
    with pytest.raises(ConfigError, match="none is visible"):
        worker_devices([0], None, 0)


def _jobs(models: list[str], tasks: list[str]) -> list[Job]:
    return [Job(ModelSource(m, m, "hub", m), t, {}) for m in models for t in tasks]


def test_work_units_keep_one_model_per_unit_and_fill_the_workers():
    units = work_units(_jobs(["a"], ["t1", "t2", "t3", "t4"]), n_workers=2)
    assert [[j.task for j in u] for u in units] == [["t1", "t2"], ["t3", "t4"]]
    units = work_units(_jobs(["a", "b", "c"], ["t1", "t2"]), n_workers=2)
    assert len(units) == 3 and all(len({j.model.spec for j in u}) == 1 for u in units)
    units = work_units(_jobs(["a"], ["t1"]), n_workers=8)
    assert len(units) == 1
    assert sorted(j.task for u in work_units(_jobs(["a", "b"], ["x", "y", "z"]), 4) for j in u) == sorted(["x", "y", "z"] * 2)


# --- model resolution --------------------------------------------------------------------------------------------
def _run_dir(path: Path, model_dir: Path, name_or_path: str) -> Path:
    path.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"model": {"name_or_path": name_or_path},
                                     "prompts": {"_target_": "rlvr.data.PromptTemplate", "answer_tag": "answer"}}),
                   path / "config.yaml")
    model_dir.rename(path / "model") if model_dir.exists() else (path / "model").mkdir()
    return path


def test_resolve_model_kinds(tmp_path, tiny_model_dir):
    hub = resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    assert (hub.kind, hub.base, hub.label) == ("hub", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen--Qwen2.5-0.5B-Instruct")
    assert resolve_model("embedded://smollm2-135m-instruct").label == "smollm2-135m-instruct"
    local = resolve_model(str(tiny_model_dir))
    assert (local.kind, local.base, local.adapter) == ("local", str(tiny_model_dir), None)
    full = _run_dir(tmp_path / "full_run", tmp_path / "nothing", "ignored")
    (full / "model" / "config.json").write_text("{}")
    src = resolve_model(str(full))
    assert (src.kind, src.base, src.run_config) == ("run", str(full / "model"), str(full / "config.yaml"))
    lora = _run_dir(tmp_path / "lora_run", tmp_path / "nothing", "embedded://smollm2-135m-instruct")
    (lora / "model" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/somewhere/else"}))
    src = resolve_model(str(lora), label="trained")
    assert (src.kind, src.base, src.adapter, src.label) == ("run-lora", "embedded://smollm2-135m-instruct",
                                                          str(lora / "model"), "trained")
    hydra_run = _run_dir(tmp_path / "outputs" / "2025-01-02" / "10-20-30", tmp_path / "nothing", "x")
    assert resolve_model(str(hydra_run)).label == "2025-01-02_10-20-30"  # a bare time keeps its date
    plain = tmp_path / "adapter"
    plain.mkdir()
    (plain / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base"}))
    assert (resolve_model(str(plain)).kind, resolve_model(str(plain)).base) == ("lora", "org/base")


def test_lora_run_is_merged_into_its_base(tmp_path, tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapter change the model
            torch.nn.init.normal_(p, std=0.5)
    adapter = tmp_path / "adapter_out"
    peft_model.save_pretrained(adapter)
    run = _run_dir(tmp_path / "run", adapter, str(tiny_model_dir))
    node = OmegaConf.to_container(load_config([], config_name="benchmark").model)
    model, tok = load_model(resolve_model(str(run)), node, "cpu")
    ids = tok("1 + 2 =", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        merged, expected = model(ids).logits, peft_model.eval()(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
    assert not hasattr(model, "peft_config")  # merged: plain transformers model, full-speed generation
    assert torch.allclose(merged, expected, atol=1e-4)
    assert not torch.allclose(merged, base, atol=1e-3)


# --- config mistakes ---------------------------------------------------------------------------------------------
def test_config_mistakes_fail_before_anything_loads(tmp_path):
    with pytest.raises(ConfigError, match="models is empty"):
        Benchmark.from_config(bench_config(tmp_path, []))
    with pytest.raises(ConfigError, match="tasks\\[0\\]"):
        Benchmark.from_config(bench_config(tmp_path, ["x/y"], "[{task: chain_sum, prams: {}}]"))
    with pytest.raises(ConfigError, match="Unknown reasoning-gym task"):
        Benchmark.from_config(bench_config(tmp_path, ["x/y"], "[chain_sums]"))
    with pytest.raises(ConfigError, match="devices"):
        Benchmark.from_config(bench_config(tmp_path, ["x/y"], "[chain_sum]", "devices=gpu"))


def test_task_entries_replace_params_and_keep_the_fixed_test_seed(tmp_path):
    bench = Benchmark.from_config(bench_config(
        tmp_path, ["x/y"], "[{task: chain_sum, params: {max_digits: 2}, label: sums}, leg_counting]", "data.test_seed=7"))
    assert list(bench.tasks) == ["sums", "leg_counting"]
    assert bench.tasks["sums"]["params"] == {"max_digits": 2}
    assert bench.tasks["leg_counting"]["params"] == {}  # the training task's params do not leak into other tasks
    assert {n["test_seed"] for n in bench.tasks.values()} == {7}


# --- running -------------------------------------------------------------------------------------------------------
def test_spawned_workers_each_see_one_device(tmp_path, tiny_model_dir):
    """The GPU path on CPU: two spawned workers whose CUDA_VISIBLE_DEVICES name no real GPU."""
    bench = Benchmark.from_config(bench_config(tmp_path, [str(tiny_model_dir)], "[chain_sum,leg_counting]",
                                               "eval.max_new_tokens=4"))
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    records = bench.run_parallel(bench.jobs(), envs=["fake-a", "fake-b"])
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before
    assert [(r["task"], r["error"]) for r in records] == [("chain_sum", None), ("leg_counting", None)]
    assert {r["cuda_visible_devices"] for r in records} <= {"fake-a", "fake-b"}
    assert all(r["result"]["n"] == 4 for r in records)
    assert len(list((tmp_path / "bench" / "results").glob("*.json"))) == 2


def test_benchmark_on_the_embedded_model_writes_every_file(tmp_path, tiny_model_dir):
    from rlvr.data import PromptTemplate, ReasoningGymData

    cfg = bench_config(tmp_path, ["embedded://smollm2-135m-instruct", f"{{path: {tiny_model_dir}, label: tiny}}"],
                       "[chain_sum,leg_counting]", "devices=cpu")
    records = Benchmark.from_config(cfg).run()
    out = tmp_path / "bench"
    assert [(r["model"], r["task"], r["error"]) for r in records] == [
        ("smollm2-135m-instruct", "chain_sum", None), ("smollm2-135m-instruct", "leg_counting", None),
        ("tiny", "chain_sum", None), ("tiny", "leg_counting", None)]
    files = sorted(p.name for p in (out / "results").glob("*.json"))
    assert files == ["chain_sum__smollm2-135m-instruct.json", "chain_sum__tiny.json",
                     "leg_counting__smollm2-135m-instruct.json", "leg_counting__tiny.json"]
    one = json.loads((out / "results" / "chain_sum__smollm2-135m-instruct.json").read_text())
    assert one["result"]["n"] == 4 and 0 <= one["result"]["accuracy"] <= 1
    # The same held-out questions as the data component builds for training (fixed by data.test_seed).
    test = ReasoningGymData(task="chain_sum", params={}, test_size=4, train_size=16).load(PromptTemplate()).test
    assert [s["question"] for s in one["samples"]] == test["question"]
    with (out / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {"model", "task", "accuracy", "format_rate", "truncation_rate"} <= set(rows[0])
    md = (out / "summary.md").read_text()
    assert "| smollm2-135m-instruct |" in md and "| chain_sum | leg_counting | mean |" in md
    png = (out / "accuracy.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
