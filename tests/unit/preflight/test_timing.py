"""Time and cost: one real step of the configured loop timed in parts, the counts it is extrapolated by, the price
from the dated table and the Terraform default, and the limits (``preflight.max_hours``, ``max_cost_usd``)."""

from __future__ import annotations

import pytest

from rlvr.preflight.timing import (
    Price,
    RunTime,
    StepTime,
    check_cost,
    check_time,
    checkpoints,
    duration,
    evaluations,
    price,
    terraform_default,
    time_step,
    write_speed,
)
from tests.conftest import REPO, build_group, compose, tiny_overrides

TABLE = str(REPO / "infrastructure" / "aws" / "prices.yaml")


def test_checkpoints_and_evaluations_are_counted_as_the_run_makes_them():
    assert checkpoints(30, 10) == 3 and checkpoints(25, 10) == 3 and checkpoints(5, 0) == 0  # and at the last step
    assert evaluations(True, 0, [30]) == 2  # baseline and final
    assert evaluations(True, 10, [30]) == 4  # + steps 10 and 20 (step 30 is the final one)
    assert evaluations(False, 0, [10, 20]) == 2  # one after each stage


def test_the_price_is_the_terraform_defaults_from_the_dated_table():
    variables = REPO / "infrastructure" / "aws" / "single_gpu" / "variables.tf"
    assert terraform_default(variables, "instance_type") == "g5.xlarge"
    assert terraform_default(variables, "spot") == "true"
    quote = price(TABLE, None, None)
    assert isinstance(quote, Price) and (quote.instance, quote.spot, quote.gpus) == ("g5.xlarge", True, 1)
    assert quote.usd_per_hour == pytest.approx(quote.on_demand_usd_per_hour * 0.35) and quote.as_of.startswith("2024")
    on_demand = price(TABLE, "p4d.24xlarge", False)
    assert on_demand.usd_per_hour == on_demand.on_demand_usd_per_hour and on_demand.gpus == 8
    assert "not in" in price(TABLE, "x9.huge", None)
    assert "no price table" in price("nowhere/prices.yaml", None, None)


def test_the_cost_of_a_run_and_a_budget_it_breaks():
    quote = price(TABLE, "g5.xlarge", False)
    fine = check_cost(7200, quote, None, "a CPU")
    assert fine.status == "pass" and fine.figures["usd"] == pytest.approx(2 * quote.usd_per_hour, abs=1e-3)
    assert "the time was measured on a CPU" in fine.summary
    over = check_cost(7200, quote, 1.0, "a CPU")
    assert over.status == "fail" and "preflight.max_cost_usd=1" in over.verdict
    assert check_cost(None, quote, None, "").status == "skip"


def test_the_time_and_a_limit_it_breaks():
    step = StepTime("train", 30, setup_s=2.0, rollout_s=4.0, reward_s=0.5, train_s=10.0, rollouts_per_step=0.5)
    assert step.step_s == pytest.approx(12.25)  # a rollout serves num_iterations=2 steps
    run = RunTime({"training steps": 30 * step.step_s, "evaluations": 60.0}, {})
    assert check_time(run, [step], "a CPU", None).status == "pass"
    late = check_time(run, [step], "a CPU", 0.1)
    assert late.status == "fail" and "preflight.max_hours=0.1" in late.verdict
    assert [duration(s) for s in (12.34, 245, 3725)] == ["12.3 s", "4 min 05 s", "1 h 02 min"]


def test_a_timed_step_that_trained_nothing_is_a_warning_not_a_measurement():
    """Expert iteration with no correct sample makes no optimizer step: its step's seconds are not a step's."""
    trained = StepTime("round1", 10, setup_s=3.0, rollout_s=0.0, reward_s=0.0, train_s=0.5)
    idle = StepTime("round2", 10, setup_s=3.0, rollout_s=0.0, reward_s=0.0, train_s=0.0, trained=False)
    run = RunTime({"trainer set-up": 6.0, "training steps": 5.0}, {})
    assert check_time(run, [trained], "a CPU", None).status == "pass"
    found = check_time(run, [trained, idle], "a CPU", None)
    assert found.status == "warn" and "round2 made no optimizer step" in found.verdict and "round1" not in found.verdict
    assert [s["trained"] for s in found.figures["steps"]] == [True, False]
    assert check_time(run, [trained, idle], "a CPU", 0.0001).status == "fail"  # a broken limit still fails


def test_write_speed_is_measured_and_leaves_nothing(tmp_path):
    assert write_speed(tmp_path, size=4 * 1024**2) > 0 and not list(tmp_path.iterdir())


def test_one_real_step_is_timed_in_parts(tiny_model_dir, tmp_path):
    """The configured GRPO loop, built for one step, on the tiny model: the parts are measured, not guessed."""
    from omegaconf import OmegaConf

    from rlvr.config import build, with_defaults
    from rlvr.model import HFModel
    from rlvr.scoring import Scorer

    cfg = with_defaults(compose([*tiny_overrides(tiny_model_dir, tmp_path), "reward.isolation=thread"]))
    loop = build(OmegaConf.merge(cfg.train, {"max_steps": 1, "save_steps": 0}))
    data, prompts, suite = build_group(cfg, "data"), build_group(cfg, "prompts"), build_group(cfg, "reward")
    model, tokenizer = HFModel(str(tiny_model_dir), dtype="float32").load()
    scorer = Scorer(prompts.answer_format, data.verifier)
    try:
        step = time_step("train", loop, 30, model, tokenizer, data.load(prompts).train, scorer,
                         suite.trl_functions(scorer), seed=0)
    finally:
        suite.close()
    assert step.rollout_s > 0 and step.reward_s > 0 and step.train_s > 0 and step.setup_s > 0
    assert step.max_steps == 30 and "rollout/seconds" in step.metrics  # the engine's own figure, logged by the step
    assert step.metrics["rollout/seconds"] <= step.rollout_s
    name, kwargs, values = step.calls[0]  # what TRL handed the reward: the step's own groups, for the behaviour checks
    assert name == "correctness" and len(kwargs["completions"]) == len(values) == 4
    assert not list(tmp_path.glob("**/checkpoint-*"))  # nothing saved
