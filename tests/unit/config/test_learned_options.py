"""The options of process reward models, reward-model ensembles and learned rewards compose from the command line,
reach their classes, and a bad value fails before anything loads, naming its key."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.evaluation import BestOfNEvaluator, Evaluator
from rlvr.orchestration import build_pipeline
from rlvr.rewards import ProcessReward, RewardModelScore
from rlvr.train import PRMLoop, RewardModelLoop
from tests.conftest import compose


def test_train_prm_picks_best_of_n_evaluation_unless_another_is_chosen():
    pipeline = build_pipeline(compose(["train=prm", "train.rollouts=8", "train.estimate=soft",
                                       "train.step_separator='\\n\\n'", "eval.n=16"]))
    assert isinstance(pipeline.trainer, PRMLoop) and isinstance(pipeline.evaluator, BestOfNEvaluator)
    assert (pipeline.trainer.rollouts, pipeline.trainer.estimate) == (8, "soft")
    assert pipeline.trainer.step_separator == "\n\n"  # escapes typed on the command line are read
    assert pipeline.evaluator.n == 16 and pipeline.evaluator.max_new_tokens == pipeline.trainer.max_completion_length
    assert pipeline.evaluator.policy.name_or_path == pipeline.model.name_or_path  # samples again after a resume
    assert type(build_pipeline(compose([])).evaluator) is Evaluator  # GRPO keeps the default evaluation


@pytest.mark.parametrize(("train", "evaluation", "fix"), [
    ("prm", "default", "use eval=best_of_n."), ("prm", "sampled", "use eval=best_of_n."),
    ("reward_model", "default", "use eval=best_of_n or eval=pairwise."),
])
def test_a_scorer_with_an_evaluation_that_generates_is_refused_before_anything_loads(train, evaluation, fix):
    """A reward model or PRM does not generate: an evaluation that makes it generate would fail only after
    training; it is refused at construction instead, naming what evaluates it."""
    with pytest.raises(ConfigError, match="trains a .*reward model, which scores text and does not generate; eval "
                                          r"\(Evaluator\) evaluates a policy: " + fix.replace(".", r"\.")):
        build_pipeline(compose([f"train={train}", f"eval={evaluation}"]))
    stages = ["~train", "+pipeline.stages.prm={_target_: rlvr.train.PRMLoop}", "eval=default", "eval.max_new_tokens=8"]
    with pytest.raises(ConfigError, match=r"pipeline.stages.prm \(PRMLoop\) trains a process reward model"):
        build_pipeline(compose(stages))
    for ok in (["train=prm"], ["train=reward_model", "eval=pairwise"], ["train=reward_model", "eval=best_of_n"]):
        build_pipeline(compose(ok))


def test_reward_model_ensemble_size_and_best_of_n():
    pipeline = build_pipeline(compose(["train=reward_model", "train.ensemble_size=4", "eval=best_of_n",
                                       "eval.uncertainty_penalty=0.5"]))
    assert isinstance(pipeline.trainer, RewardModelLoop) and pipeline.trainer.ensemble_size == 4
    assert pipeline.evaluator.uncertainty_penalty == 0.5


def test_learned_rewards_compose_beside_the_verifier(tiny_scorer_dirs):
    prm_dir, rm_dir = tiny_scorer_dirs
    suite = build_pipeline(compose(["reward=verifier_prm", f"reward.functions.prm.path={prm_dir}",
                                    "reward.functions.prm.aggregation=product", "reward.weights.prm=2"])).reward
    assert list(suite.functions) == ["correctness", "prm"] and suite.weights == {"correctness": 1.0, "prm": 2.0}
    assert isinstance(suite.functions["prm"], ProcessReward) and suite.functions["prm"].aggregation == "product"
    suite = build_pipeline(compose(["reward=verifier_reward_model", f"reward.functions.reward_model.path={rm_dir}",
                                    "train=ppo"])).reward
    assert isinstance(suite.functions["reward_model"], RewardModelScore)
    assert suite.functions["reward_model"].uncertainty_penalty == 1.0 and suite.weights["reward_model"] == 0.5


def test_a_saved_prm_reranks_a_policys_samples_in_an_evaluation_only_run(tiny_scorer_dirs):
    """The README's command: nothing trained, the policy's 8 samples per question reranked (``eval.rerank=prm``
    chooses the nested group eval/rerank, as ``eval/rerank=prm`` does)."""
    pipeline = build_pipeline(compose(["~train", "~reward", "eval=sampled", "eval.max_new_tokens=40", "eval.rerank=prm",
                                       f"eval.rerank.prm.path={tiny_scorer_dirs[0]}"]))
    assert pipeline.trainer is None and isinstance(pipeline.evaluator.rerank["prm"], ProcessReward)


@pytest.mark.parametrize(("overrides", "message"), [
    (["train=prm", "train.max_completion_length=0"], "'train.max_completion_length' must be >= 1, got 0"),
    (["train=prm", "train.sample_temperature=0"], "'train.sample_temperature' must be > 0, got 0"),
    (["train=prm", "train.label_prompts=0"], "'train.label_prompts' must be >= 1, got 0"),
    (["train=reward_model", "train.ensemble_size=0"], "'train.ensemble_size' must be >= 1, got 0"),
    (["train=prm", "eval.aggregation=mean"], "Invalid value 'mean' for 'eval.aggregation'"),
    (["train=prm", "eval.n=0"], "'eval.n' must be >= 1, got 0"),
    (["reward=verifier_prm"], "'reward.functions.prm.path' must be set"),
    (["reward=verifier_reward_model", "reward.functions.reward_model.path=/nowhere"], "holds no saved model"),
    (["reward=verifier_reward_model", "reward.functions.reward_model.path=/nowhere",
      "reward.functions.reward_model.uncertainty_penalty=-1"],
     "'reward.functions.reward_model.uncertainty_penalty' must be >= 0"),
])
def test_a_bad_value_fails_before_anything_loads_naming_its_key(overrides, message, tmp_path):
    with pytest.raises(ConfigError) as error:
        build_pipeline(compose([*overrides, f"output_dir={tmp_path}"]))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not any(tmp_path.iterdir())
