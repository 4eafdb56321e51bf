"""data=reasoning_gym: one task or a weighted mixture (reasoning-gym's composite), each row scored by its
own task's verifier; a verifier that chokes on an answer makes it unparseable, not a crash."""

from __future__ import annotations

import json

import pytest

from rlvr.data import PromptTemplate, ReasoningGymData
from rlvr.errors import ConfigError
from rlvr.scoring import ReasoningGymVerifier, Scorer
from tests.conftest import build_group, compose

MIX = {
    "chain_sum": {"weight": 1.0, "params": {"min_terms": 2, "max_terms": 2, "min_digits": 2, "max_digits": 2}},
    "leg_counting": {"weight": 3.0, "params": {"min_animals": 1, "max_animals": 3}},
}


def test_mixture_draws_every_task_by_weight_and_scores_each_by_its_own_verifier():
    data = ReasoningGymData(mixture=MIX, train_size=80, test_size=24)
    splits = data.load(PromptTemplate())
    tasks = list(splits.train["task"]) + list(splits.test["task"])
    assert set(tasks) == {"chain_sum", "leg_counting"}
    assert tasks.count("leg_counting") > tasks.count("chain_sum")  # weight 3 : 1
    assert splits.stats["train_rows/chain_sum"] + splits.stats["train_rows/leg_counting"] == len(splits.train)
    assert set(splits.train["question"]).isdisjoint(set(splits.test["question"]))
    scorer = Scorer(PromptTemplate().answer_format, data.verifier)
    for row in splits.test.to_list():
        assert json.loads(row["entry"])["metadata"]["source_dataset"] == row["task"]
        assert scorer(f"The answer is {row['answer']}", row).correct
        assert scorer(f"The answer is {int(row['answer']) + 1}", row).status == "wrong"


def test_mixture_config_composes_builds_and_loads():
    cfg = compose(["data=reasoning_gym_mix", "data.train_size=24", "data.test_size=8"])
    data = build_group(cfg, "data")
    assert set(data.mixture) == {"chain_sum", "basic_arithmetic", "leg_counting"}
    splits = data.load(PromptTemplate())
    assert len(splits.test) == 8 and set(splits.train["task"]) <= set(data.mixture)


def test_mixture_is_reproducible():
    a = ReasoningGymData(mixture=MIX, train_size=20, test_size=5).load(PromptTemplate())
    b = ReasoningGymData(mixture=MIX, train_size=20, test_size=5).load(PromptTemplate())
    assert list(a.train["question"]) == list(b.train["question"])


def test_mixture_from_the_command_line_with_per_task_rewards():
    """A mixture and one Correctness per task: each task gets its own logged reward and weight."""
    cfg = compose([
        "data=reasoning_gym", "data.train_size=16", "data.test_size=4",
        "+data.mixture.chain_sum={weight: 1}", "+data.mixture.leg_counting={weight: 1}",
        "reward.functions.correctness=null",
        "+reward.functions.sums={_target_: rlvr.rewards.Correctness, task: chain_sum}",
        "+reward.functions.legs={_target_: rlvr.rewards.Correctness, task: leg_counting}",
        "reward.weights.legs=2.0",
    ])
    data = build_group(cfg, "data")
    suite = build_group(cfg, "reward")
    rows = data.load(PromptTemplate()).train.to_list()
    rewards = suite.trl_functions(Scorer(PromptTemplate().answer_format, data.verifier))
    columns = {k: [r[k] for r in rows] for k in ("answer", "task", "entry")}
    completions = [f"It is {r['answer']}" for r in rows]
    out = {name: f(prompts=[None] * len(rows), completions=completions, **columns)
           for name, f in rewards.functions.items()}
    assert rewards.weights == {"sums": 1.0, "legs": 2.0}
    for i, row in enumerate(rows):
        mine, other = ("sums", "legs") if row["task"] == "chain_sum" else ("legs", "sums")
        assert out[mine][i] == 1.0 and out[other][i] is None


@pytest.mark.parametrize(
    ("mixture", "message"),
    [
        ({"chain_summ": {"weight": 1}}, "Unknown reasoning-gym task 'chain_summ'"),
        ({"chain_sum": {"weight": 0}}, "data.mixture.chain_sum.weight must be a positive number"),
        ({"chain_sum": {"weight": "a lot"}}, "data.mixture.chain_sum.weight"),
        ({"chain_sum": {"wieght": 1}}, r"data.mixture.chain_sum must be \{weight"),
        ({"chain_sum": 1}, r"data.mixture.chain_sum must be \{weight"),
    ],
)
def test_bad_mixtures_fail_at_construction(mixture, message):
    with pytest.raises(ConfigError, match=message):
        ReasoningGymData(mixture=mixture)


def test_unknown_task_params_in_a_mixture_fail_at_construction():
    with pytest.raises(ConfigError, match=r"Unknown key 'data.mixture.chain_sum.params.max_termz'.*'max_terms'"):
        ReasoningGymData(mixture={"chain_sum": {"weight": 1, "params": {"max_termz": 3}}}, train_size=4, test_size=2)


def test_task_params_that_reasoning_gym_rejects_fail_at_construction():
    with pytest.raises(ConfigError, match="data.params.chain_sum: reasoning-gym rejects"):
        ReasoningGymData(task="chain_sum", params={"chain_sum": {"min_terms": 4, "max_terms": 2}})


def test_verifier_exception_is_unparseable_and_missing_entry_is_bad_gold(monkeypatch):
    from rlvr.scoring import verifiers as rg

    def choking(answer, entry):
        raise TypeError("cannot compare")

    monkeypatch.setattr(rg, "_score_fn", lambda task: choking)
    scorer = Scorer(PromptTemplate().answer_format, ReasoningGymVerifier())
    row = {"task": "chain_sum", "entry": json.dumps({"metadata": {"source_dataset": "chain_sum"}}), "answer": "3"}
    assert scorer("3", row).status == "unparseable"
    assert scorer("3", {"task": "chain_sum", "entry": "not json", "answer": "3"}).status == "bad_gold"
