"""The stage plan and the regression gate as configured: validation before anything loads, and the verdicts."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.evaluation import RegressionGate
from rlvr.orchestration import build_pipeline
from tests.conftest import compose


def summary(name: str, accuracy: float, repetition_rate: float = 0.0, tokens: float = 20.0) -> dict:
    return {"name": name, "accuracy": accuracy, "format_rate": 1.0, "parse_rate": 1.0, "repetition_rate":
            repetition_rate, "mean_completion_tokens": tokens, "truncation_rate": 0.0}


def test_gate_refuses_a_drop_beyond_max_drop_and_keeps_a_smaller_one():
    gate = RegressionGate(max_drop=0.05)
    ok = gate.judge(summary("baseline", 0.50), summary("sft", 0.46))
    assert ok["passed"] and ok["change"] == pytest.approx(-0.04) and ok["compared_with"] == "baseline"
    bad = gate.judge(summary("baseline", 0.50), summary("sft", 0.40))
    assert not bad["passed"] and "accuracy fell 0.5 -> 0.4" in bad["reason"]


def test_gate_watches_repetition_and_length_where_lower_is_better():
    gate = RegressionGate(max_increase={"repetition_rate": 0.1, "mean_completion_tokens": 10})
    assert gate.judge(summary("a", 0.5), summary("b", 0.5, repetition_rate=0.05, tokens=29))["passed"]
    looping = gate.judge(summary("a", 0.5), summary("b", 0.9, repetition_rate=0.3))
    assert not looping["passed"] and "repetition_rate rose" in looping["reason"]
    rambling = gate.judge(summary("a", 0.5), summary("b", 0.9, tokens=45))
    assert not rambling["passed"] and "mean_completion_tokens rose" in rambling["reason"]


def test_gate_off_by_default_records_the_change_and_passes():
    gate = RegressionGate()
    assert not gate.enabled
    verdict = gate.judge(summary("a", 0.9), summary("b", 0.1))
    assert verdict["passed"] and verdict["change"] == pytest.approx(-0.8)
    assert gate.judge(None, summary("b", 0.1))["passed"]  # no baseline evaluated: nothing to compare with


def test_the_default_job_has_one_stage_and_no_gate():
    pipeline = build_pipeline(compose())
    assert pipeline.plan.stages == {} and not pipeline.plan.gate.enabled and pipeline.trainer is not None


def test_sft_then_grpo_builds_two_stages_with_their_own_settings():
    pipeline = build_pipeline(compose(["experiment=sft_then_grpo", "pipeline.stages.grpo.max_steps=7",
                                       "pipeline.gate.max_drop=0.02"]))
    assert list(pipeline.plan.stages) == ["sft", "grpo"] and pipeline.trainer is None
    assert pipeline.plan.stages["grpo"].max_steps == 7 and pipeline.plan.gate.max_drop == 0.02
    assert pipeline.plan.gate.max_increase == {"repetition_rate": 0.1}
    assert pipeline.config["pipeline"]["gate"]["on_regression"] == "continue"  # defaults on record
    assert pipeline.config["eval"]["max_new_tokens"] == pipeline.plan.stages["grpo"].settings["max_completion_length"]


@pytest.mark.parametrize("overrides, message", [
    (["pipeline.gate.max_dorp=0.1"], "Did you mean 'max_drop'?"),
    (["pipeline.gate.on_regression=halt"], "Valid choices: continue, stop"),
    (["pipeline.gate.metric=loss"], "Valid choices: accuracy, format_rate, parse_rate"),
    (["+pipeline.gate.max_increase.length=5"], "Valid choices: repetition_rate, mean_completion_tokens"),
    (["pipeline.gate.max_drop=lots"], "'pipeline.gate.max_drop' must be a number, got 'lots'"),
    (["pipeline.stages.grpo.max_stesp=3"], "Did you mean 'max_steps'?"),
    (["train.max_steps=5"], "pipeline.stages replaces train"),
    (["+train@pipeline.stages.final=grpo"], "not baseline, final or eval"),
])
def test_a_wrong_stage_or_gate_setting_fails_before_anything_loads(overrides, message):
    with pytest.raises(ConfigError, match=None) as e:
        build_pipeline(compose(["experiment=sft_then_grpo", *overrides]))
    assert message in str(e.value)
