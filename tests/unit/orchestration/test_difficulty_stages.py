"""The curriculum and the difficulty filter through the real pipeline (tiny model): the pass-rate stage between the
scorer and the baseline (pass rates saved, kept and dropped in results.json, read back by a rerun), the levels in
every step's metrics, the console line, the report and the plots, results.json's ``curriculum`` and per-level
evaluations; a loop that cannot take rows chosen as training goes is refused."""

from __future__ import annotations

import json

import pytest

from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from tests.conftest import FIXTURES, compose, read_jsonl, tiny_overrides
from tests.unit.orchestration.test_orchestrator import SIGNAL

CURRICULUM = ["data.curriculum.attributes={chain_sum: {num_terms: [0, 1]}}", "data.curriculum.start={chain_sum: 1}",
              "data.curriculum.window=1", "data.curriculum.lower_below=0.5"]


def test_pass_rate_stage_on_a_file_dataset_with_flat_prompts_skipped(tiny_model_dir, tmp_path):
    overrides = tiny_overrides(tiny_model_dir, tmp_path) + [
        "data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.train_size=6", "observers=default", SIGNAL,
        "data.difficulty_filter.samples=2", "data.difficulty_filter.min_correct=0",
        "data.difficulty_filter.max_correct=1",
        "data.difficulty_filter.max_new_tokens=4", "data.difficulty_filter.flat_epochs=1", "save_model=false"]
    results = build_pipeline(compose(overrides)).run(tmp_path)
    assert results["run"]["stages_done"][:6] == ["setup", "data", "model", "rewards", "difficulty_filter",
                                                 "baseline_eval"]
    stats = results["pass_rate_filter"]
    assert stats["prompts"] == 6 and stats["kept"] == 6 - stats["dropped_too_easy"] and stats["kept_correct"] == [0, 1]
    rates = read_jsonl(tmp_path / "pass_rates.jsonl")
    assert [r["index"] for r in rates] == list(range(6)) and all(r["samples"] == 2 for r in rates)
    assert results["flat_prompts"]["flat_epochs"] == 1 and "skipped_prompts" in results["flat_prompts"]
    train = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert all("flat_prompts/skipped" in r for r in train)
    report = (tmp_path / "report.md").read_text()
    assert "## Difficulty filter" in report and f"kept **{stats['kept']}** of 6 training prompts" in report
    ended = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r.get("stage") == "difficulty_filter"]
    assert ended and ended[0]["kept"] == stats["kept"]  # the stage's output: kept and dropped, on every observer


def test_curriculum_levels_reach_metrics_console_report_and_results(tiny_model_dir, tmp_path, caplog):
    overrides = tiny_overrides(tiny_model_dir, tmp_path) + ["observers=default", SIGNAL, "save_model=false",
                                                            "train.max_steps=3", *CURRICULUM]
    with caplog.at_level("INFO", logger="rlvr"):
        results = build_pipeline(compose(overrides)).run(tmp_path)
    train = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert [r["curriculum/level/chain_sum"] for r in train] == [1.0, 0.0, 0.0]
    assert results["curriculum"]["changes"][0] | {"params": None} == {
        "step": 2, "task": "chain_sum", "from": 1, "to": 0, "accuracy": 0.0, "params": None}
    assert results["curriculum"]["level_params"] == {"chain_sum/L0": {"min_terms": 2, "max_terms": 2},
                                                     "chain_sum/L1": {"min_terms": 3, "max_terms": 3}}
    for name in ("baseline", "final"):
        assert set(results[name]["per_level"]) == {"chain_sum/L0", "chain_sum/L1"} and results[name]["n"] == 8
    assert results["data"]["test_rows/chain_sum/L1"] == 4
    assert any("level chain_sum 1" in m for m in caplog.messages)
    assert any("curriculum: chain_sum level 1 -> 0 before step 2" in m for m in caplog.messages)
    report = (tmp_path / "report.md").read_text()
    assert "## Curriculum" in report and "| chain_sum/L1 | min_terms=3, max_terms=3 |" in report
    assert (tmp_path / "plots" / "curriculum.png").is_file() and (tmp_path / "plots" / "levels.png").is_file()
    config = json.loads(json.dumps(results["curriculum"]["settings"]))
    assert config["attributes"] == {"chain_sum": {"num_terms": [0, 1]}}


def test_a_loop_that_does_not_sample_groups_is_refused_a_curriculum(tiny_model_dir, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_model_dir, tmp_path) if not o.startswith("train.num_generations")]
    pipeline = build_pipeline(compose(overrides + ["train=sft", *CURRICULUM]))
    with pytest.raises(ConfigError, match=r"choose rows for loops that sample groups \(train=grpo, rloo\); train is "
                                          r"SFTLoop"):
        pipeline.run(tmp_path)
