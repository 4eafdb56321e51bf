"""Learned rewards, loaded with transformers' own classes from where a run saved them: a process reward model's
step scores aggregated (min, last, product) and a reward-model ensemble's mean minus a penalty on its spread. In
the reward suite they weigh like any reward beside the verifier, in a worker process, and report their
disagreement with the verifier; the console warns when it is large."""

from __future__ import annotations

import math

import pytest

from rlvr.errors import ConfigError
from rlvr.interfaces import RewardOutput, Score
from rlvr.rewards import ProcessReward, RewardModelScore, weighted_total
from rlvr.rewards.learned import step_scores, verifier_disagreement
from rlvr.scoring import NumberVerifier, Scorer
from rlvr.train.diagnostics import Diagnoser, diagnose
from tests.conftest import build_group, compose

PROMPT = [{"role": "user", "content": "2 + 3 + 4 ="}]
TEXTS = ["2 + 3 = 5\n5 + 4 = 9\nso 9", "2 + 3 = 6\nso 10", "9", " \n "]


@pytest.fixture(scope="module")
def loaded_prm(tiny_scorer_dirs):
    reward = ProcessReward(str(tiny_scorer_dirs[0]))
    return reward, *reward.model.load()


def test_a_prm_reads_each_step_at_its_last_token_and_aggregates_min_last_or_product(loaded_prm, tiny_scorer_dirs):
    _, model, tok = loaded_prm
    steps = step_scores(model, tok, [PROMPT] * 4, TEXTS, "\n")
    assert [len(s) for s in steps] == [3, 2, 1, 0] and all(0 < p < 1 for s in steps for p in s)
    assert steps[2] == pytest.approx(step_scores(model, tok, [PROMPT], ["9"], "\n")[0])  # batching changes nothing
    for how, pick in (("min", min), ("last", lambda s: s[-1]), ("product", math.prod)):
        values = ProcessReward(str(tiny_scorer_dirs[0]), aggregation=how).rate([PROMPT] * 4, TEXTS)
        assert values[:3] == pytest.approx([pick(s) for s in steps[:3]], abs=1e-6)
        assert values[3] == 0.0  # no step: nothing to credit


def test_a_reward_model_ensemble_pays_its_mean_minus_the_penalty_times_its_spread(tiny_scorer_dirs):
    plain = RewardModelScore(str(tiny_scorer_dirs[1]))
    heads = plain.heads([PROMPT] * 3, TEXTS[:3])
    assert all(len(h) == 2 for h in heads) and any(h[0] != h[1] for h in heads)  # two heads, seeded apart
    out = RewardModelScore(str(tiny_scorer_dirs[1]), uncertainty_penalty=2.0)(TEXTS[:3], prompts=[PROMPT] * 3)
    assert isinstance(out, RewardOutput)
    assert out.values == pytest.approx([(a + b) / 2 - 2.0 * abs(a - b) / 2 for a, b in heads], abs=1e-6)
    assert out.metrics["ensemble_std"] == pytest.approx(sum(abs(a - b) / 2 for a, b in heads) / 3, abs=1e-6)
    assert plain.rate([PROMPT] * 3, TEXTS[:3]) == pytest.approx([(a + b) / 2 for a, b in heads], abs=1e-6)


def test_disagreement_is_the_share_of_verifier_ordered_pairs_the_learned_reward_reverses():
    right, wrong, unparsed = Score("9", "correct", 1.0), Score("8", "wrong", 0.0), Score(None, "unparseable", 0.0)
    assert verifier_disagreement([0.9, 0.1, 0.2], [right, wrong, unparsed]) == 0.0
    assert verifier_disagreement([0.1, 0.9, 0.1], [right, wrong, unparsed]) == pytest.approx(0.75)  # a tie: half
    assert verifier_disagreement([0.5, 0.4], [right, right]) is None  # no pair the verifier tells apart
    assert verifier_disagreement([0.5, 0.4], [right, Score("9", "bad_gold", 0.0)]) is None


def call_like_trl(suite, scorer, texts, answers):
    rewards = suite.trl_functions(scorer)
    logged: dict[str, float] = {}
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    values = {name: f(prompts=[PROMPT] * len(texts), completions=completions, completion_ids=None,
                      log_metric=logged.__setitem__, answer=answers) for name, f in rewards.functions.items()}
    return values, rewards.weights, logged


def test_the_verifier_and_a_prm_mix_by_weight_in_worker_processes_and_log_their_disagreement(loaded_prm,
                                                                                           tiny_scorer_dirs):
    """reward=verifier_prm as shipped (the PRM loads in each reward worker from its path)."""
    cfg = compose(["reward=verifier_prm", f"reward.functions.prm.path={tiny_scorer_dirs[0]}",
                   "reward.functions.prm.aggregation=last", "reward.weights.prm=0.25", "reward.workers=1"])
    suite = build_group(cfg, "reward")
    scorer = Scorer(build_group(cfg, "prompts").answer_format, NumberVerifier())
    try:
        values, weights, logged = call_like_trl(suite, scorer, TEXTS, ["9"] * 4)
    finally:
        suite.close()
    reward, _, _ = loaded_prm
    expected = ProcessReward(reward.model.path, aggregation="last").rate([PROMPT] * 4, TEXTS)
    assert values["correctness"] == [1.0, 0.0, 1.0, 0.0] and values["prm"] == pytest.approx(expected, abs=1e-6)
    assert weights == {"correctness": 1.0, "prm": 0.25}
    total = weighted_total(values, weights).tolist()
    assert total == pytest.approx([c + 0.25 * p for c, p in zip(values["correctness"], expected)], abs=1e-6)
    scores = [scorer(t, {"answer": "9"}) for t in TEXTS]
    assert logged["prm/verifier_disagreement"] == pytest.approx(verifier_disagreement(expected, scores))
    assert logged["reward_failures/prm"] == 0.0


def test_the_console_says_when_a_learned_reward_and_the_verifier_disagree_on_many_samples():
    (line,) = diagnose({"prm/verifier_disagreement": 0.7})
    assert "'prm' and the verifier disagree" in line and "70% the other way" in line
    assert "lower reward.weights.prm" in line
    assert diagnose({"prm/verifier_disagreement": 0.1, "reward_model/verifier_disagreement": 0.2}) == []
    d = Diagnoser(window=3)
    assert d.update({"reward_model/verifier_disagreement": 0.9, "reward": 0.1}) == []  # one step is no evidence
    d.update({"reward_model/verifier_disagreement": 0.5, "reward": 0.1})
    (line,) = d.update({"reward_model/verifier_disagreement": 0.4, "reward": 0.1})
    assert "'reward_model' and the verifier disagree over the last 3 steps" in line and "60%" in line


def test_a_learned_reward_must_point_at_a_saved_model_of_its_kind(tiny_scorer_dirs, tmp_path):
    prm_dir, rm_dir = tiny_scorer_dirs
    with pytest.raises(ConfigError, match="holds no saved model"):
        ProcessReward(str(tmp_path))
    with pytest.raises(ConfigError, match="holds a LlamaForSequenceClassification, not a process reward model"):
        ProcessReward(str(rm_dir))
    with pytest.raises(ConfigError, match="holds a LlamaForTokenClassification, not a reward model"):
        RewardModelScore(str(prm_dir))
    with pytest.raises(ConfigError, match="'reward.functions.prm.aggregation'"):
        build_group(compose(["reward=verifier_prm", f"reward.functions.prm.path={prm_dir}",
                             "reward.functions.prm.aggregation=mean"]), "reward")
