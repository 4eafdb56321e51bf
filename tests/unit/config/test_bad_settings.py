"""About fifty mistakes a careful user makes on the command line, each refused by the configuration's own checks
(the ranges and choices declared in the components' signatures, and the checks of their constructors) with one
line that names the key and what is wrong, before any data or model loads. The command-line wrapper (exit 2, one
line on stderr, no run directory) is tested on a few of them in tests/unit/test_cli.py; files that turn out
empty or missing at load time are tested with the data sources and the model."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.orchestration import build_pipeline
from tests.conftest import FIXTURES, compose

STREAM = ["data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.streaming=true"]

CASES = [
    (['train.learning_rate=-1'], "'train.learning_rate' must be > 0, got -1."),
    (['train.per_device_train_batch_size=0'], "'train.per_device_train_batch_size' must be >= 1, got 0."),
    (['train.gradient_accumulation_steps=0'], "'train.gradient_accumulation_steps' must be >= 1, got 0."),
    (['train.top_p=0'], "'train.top_p' must be in (0, 1], got 0."),
    (['train.top_p=1.5'], "'train.top_p' must be in (0, 1], got 1.5."),
    (['train.beta=-0.1'], "'train.beta' must be >= 0, got -0.1."),
    (['train.max_completion_length=0'], "'train.max_completion_length' must be >= 1, got 0."),
    (['train.num_generations=1'], "'train.num_generations' must be >= 2 (the advantage compares completio"),
    (['train.temperature=0'], "'train.temperature' must be > 0, got 0."),
    (['train.epsilon=1.5'], "'train.epsilon' must be in (0, 1) (the ratio is clipped below at 1 - e"),
    (['train.epsilon_high=0.1'], 'train.epsilon_high (0.1) is the upper clip bound: it must be >= train.'),
    (['train.max_steps=0'], "'train.max_steps' must be >= 1, got 0."),
    (['train.warmup_steps=-1'], "'train.warmup_steps' must be >= 0, got -1."),
    (['train.save_steps=-1'], "'train.save_steps' must be >= 0, got -1."),
    (['train.keep_checkpoints=0'], "'train.keep_checkpoints' must be >= 1, got 0."),
    (['train.loss_type=foo'], "Invalid value 'foo' for 'train.loss_type'. Valid choices: grpo, dr_grp"),
    (['train.scale_rewards=maybe'], "Invalid value 'maybe' for 'train.scale_rewards'. Valid choices: group,"),
    (['train.rollout=fast'], "Invalid value 'fast' for 'train.rollout'. Valid choices: engine, trl, "),
    (['train.rollout=vllm'], 'train.rollout=vllm needs vLLM, which is not installed: pip install "rl'),
    (['train.extra.not_a_field=1'], 'train.extra has keys that trl.GRPOConfig does not know: not_a_field.'),
    (['train.extra.beta=0.1'], 'train.extra.beta: a setting of its own, set train.beta instead.'),
    (['train.per_device_train_batch_size=6'], 'train.per_device_train_batch_size x gradient_accumulation_steps (6) mu'),
    (['train.max_resample_rounds=0'], "'train.max_resample_rounds' must be >= 1 (0 refills nothing), got 0."),
    (['train.on_nonfinite_loss=ignore'], "Invalid value 'ignore' for 'train.on_nonfinite_loss'. Valid choices: s"),
    (['train.rollout=trl', 'train.rollout_compile=true'], 'train.rollout_compile compiles our rollout engine; train.r'),
    (['train.extra.generation_kwargs.no_repeat_ngram_size=2'], 'train.extra.generation_kwargs: the engine does not im'),
    (['model.lora.enabled=true', 'model.lora.r=0'], "'model.lora.r' must be >= 1, got 0."),
    (['model.dtype=float8'], "Invalid value 'float8' for 'model.dtype'. Valid choices: auto, float32"),
    (['model.lora.dropout=1.5'], "'model.lora.dropout' must be in [0, 1), got 1.5."),
    (['data.train_size=0'], "'data.train_size' must be >= 1, got 0."),
    (['data.test_size=0'], "'data.test_size' must be >= 1, got 0."),
    (['data.task=nope'], "Unknown reasoning-gym task 'nope' (data.task / data.mixture). 106 task"),
    (['data.params.chain_sum.max_terms=0'], "data.params.chain_sum: reasoning-gym rejects {'min_terms': 2, 'max_ter"),
    (['data.params.chain_sum.min_terms=5', 'data.params.chain_sum.max_terms=2'], 'data.params.chain_sum: reasoning-gy'),
    (['eval.batch_size=0'], "'eval.batch_size' must be >= 1, got 0."),
    (['eval.max_new_tokens=0'], "'eval.max_new_tokens' must be >= 1, got 0."),
    (['eval.num_samples=0'], "Unknown key 'eval.num_samples' for rlvr.evaluation.Evaluator. Did you "),
    (['eval.temperature=-1'], "'eval.temperature' must be > 0, got -1."),
    (['reward.timeout_s=0'], "'reward.timeout_s' must be > 0, got 0."),
    (['reward.on_error=explode'], "Invalid value 'explode' for 'reward.on_error'. Valid choices: mask, ze"),
    (['reward.workers=0'], "'reward.workers' must be >= 1, got 0."),
    (['reward.isolation=fork'], "Invalid value 'fork' for 'reward.isolation'. Valid choices: process, t"),
    (['reward.weights.nope=1'], 'reward.weights names nope, which reward.functions does not have (funct'),
    (['seed=abc'], "'seed' must be an integer, got 'abc'."),
    (['train.learning_rate=fast'], "'train.learning_rate' must be a number, got 'fast'."),
    (['train.dynamic_sampling=maybe'], "'train.dynamic_sampling' must be true or false, got 'maybe'."),
    (['model.lora.target_modules=5'], "'model.lora.target_modules' got 5, which is not a string or list."),
    (['data=gsm8k', 'data.path=/nonexistent.jsonl'], "data.path: '/nonexistent.jsonl' does not exist."),
    ([*STREAM, 'data.shuffle_buffer=-1'], "'data.shuffle_buffer' must be >= 0, got -1."),
    ([*STREAM, 'train=dpo'], 'data.streaming=true: train (DPOLoop) trains on rows held in memory; train=grpo and'),
    ([*STREAM, 'experiment=sft_then_grpo', 'train@pipeline.stages.sft=dpo'], 'data.streaming=true: pipeline.stage'
                                                                             's.sft (DPOLoop) trains on rows held in'),
    ([*STREAM, 'train=sft', 'train.packing=true'], 'train.packing joins streamed rows into sequences, and a stream'),
    ([*STREAM, 'train=sft', 'train.extra.dataloader_num_workers=2'], 'train.extra.dataloader_num_workers: a stream i'),
    ([*STREAM, 'train.dynamic_sampling=true'], 'train.dynamic_sampling draws further prompts from anywhere in the t'),
    (['observers=tensorboard', 'observers.tensorboard.num_samples=-1'], "'observers.tensorboard.num_samples' must "),
    (['train=expert_iteration', 'train.rounds=0'], "'train.rounds' must be >= 1, got 0."),
    ([*STREAM, 'train=expert_iteration'], 'train=expert_iteration samples each round\'s prompts from the whole tr'),
    (['train=expert_iteration', 'train.keep_per_prompt=0'], "'train.keep_per_prompt' must be >= 1, got 0."),
    (['train=dpo', 'train.preferences=refine', 'train.refine.rounds=0'], "'train.refine.rounds' must be >= 1, got 0"),
    (['eval=refine', 'eval.refine.feedback=oracle'], "Invalid value 'oracle' for 'eval.refine.feedback'. Valid choi"),
    (['eval=refine', 'eval.refine.principles=/no.yaml'], 'eval.refine.principles=/no.yaml: cannot be read as a YAML'),
    (['eval=validated', 'eval.validator.batch_size=0'], "'eval.validator.batch_size' must be >= 1, got 0."),
    (['pipeline.gate.max_decrease.accurcy=0.1'], "Invalid value 'accurcy' for 'pipeline.gate.max_decrease.accurcy'"),
    (['pipeline.gate.max_increase.ref_perplexity=2'], 'pipeline.gate watches ref_perplexity, which eval (Evaluator)'),
]


@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_bad_setting_is_refused_in_one_line_before_anything_loads(overrides, message):
    with pytest.raises(ConfigError) as error:
        build_pipeline(compose(overrides))
    text = str(error.value)
    assert text.startswith(message) and "\n" not in text.strip()



def _direct_cases():
    from rlvr.data import PromptTemplate, QAData, ReasoningGymData
    from rlvr.evaluation import Evaluator, PairwiseEvaluator
    from rlvr.model import HFModel
    from rlvr.rewards import LengthShaping, RewardSuite
    from rlvr.train import DPOLoop, GRPOLoop, PPOLoop, SFTLoop

    return [
        (["eval.top_p=1.5"], lambda: Evaluator(top_p=1.5), "'eval.top_p' must be in (0, 1], got 1.5."),
        (["eval=pairwise", "eval.batch_size=0"], lambda: PairwiseEvaluator(batch_size=0),
         "'eval.batch_size' must be >= 1, got 0."),
        (["reward.timeout_s=0"], lambda: RewardSuite({"a": LengthShaping()}, timeout_s=0),
         "'reward.timeout_s' must be > 0, got 0."),
        (["data.test_size=0"], lambda: ReasoningGymData(task="chain_sum", test_size=0),
         "'data.test_size' must be >= 1, got 0."),
        (["data=jsonl", "data.path=x", "data.train_size=0"], lambda: QAData(path="x", train_size=0),
         "'data.train_size' must be >= 1, got 0."),
        (["prompts.answer_style=boxed"], lambda: PromptTemplate(answer_style="boxed"),
         "Invalid value 'boxed' for 'prompts.answer_style'. Valid choices: last_number, gsm8k."),
        (["model.dtype=int3"], lambda: HFModel("m", dtype="int3"), "Invalid value 'int3' for 'model.dtype'."),
        (["train.top_p=0"], lambda: GRPOLoop(top_p=0), "'train.top_p' must be in (0, 1], got 0."),
        (["train=sft", "train.max_steps=0"], lambda: SFTLoop(max_steps=0), "'train.max_steps' must be >= 1, got 0."),
        (["train=dpo", "train.sample_temperature=0"], lambda: DPOLoop(sample_temperature=0),
         "'train.sample_temperature' must be > 0, got 0."),
        (["experiment=ppo", "train.lam=2"], lambda: PPOLoop(lam=2), "'train.lam' must be in [0, 1], got 2."),
    ]


@pytest.mark.parametrize("case", range(11))
def test_direct_construction_refuses_what_the_config_refuses_in_the_same_words(case):
    """One check (rlvr.schema.check_arguments) for both ways of building a component: no constructor re-checks a
    single setting's range, yet building one in Python with a bad value fails with the config's own line."""
    overrides, construct, message = _direct_cases()[case]
    for build in (lambda: build_pipeline(compose(overrides)), construct):
        with pytest.raises(ConfigError) as error:
            build()
        assert str(error.value).startswith(message), str(error.value)
