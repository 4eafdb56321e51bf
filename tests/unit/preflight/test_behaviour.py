"""The behaviour checks: sampling with TRL's own generation settings through the engine or ``generate``, scoring
with the run's suite as TRL calls it, and the verdicts (flat groups by kind, cut-off completions, unreadable
answers, a reward that pays everyone the same)."""

from __future__ import annotations

import tempfile
from types import SimpleNamespace

import pytest
import torch

from rlvr.interfaces import Score
from rlvr.preflight.behaviour import Behaviour, checks, from_calls, generation_config, sample, score
from rlvr.rewards import Correctness, RewardSuite
from rlvr.scoring import AnswerFormat, NumberVerifier, Scorer

THRESHOLDS = SimpleNamespace(min_parse_rate=0.5, min_format_rate=0.5, max_truncated_completions=0.5,
                             max_flat_groups=0.75)
SCORER = Scorer(AnswerFormat(), NumberVerifier())


def behaviour(statuses: list[str], group: int = 4, truncated: float = 0.0, **rewards: list[float | None]) -> Behaviour:
    """A sample of ``len(statuses)`` completions in groups of ``group`` (a correct one scores 1)."""
    n = len(statuses)
    scores = [Score("7" if s != "unparseable" else None, s, float(s == "correct")) for s in statuses]
    rewards = rewards or {"correctness": [float(s == "correct") for s in statuses]}
    return Behaviour(group, ["The answer is 7."] * n, [10] * n, [i < truncated * n for i in range(n)], scores,
                     rewards, dict.fromkeys(rewards, 1.0), [True] * n)


def test_groups_are_told_apart_by_kind():
    b = behaviour(["correct"] * 4 + ["wrong"] * 4 + ["unparseable"] * 4 + ["correct", "wrong", "wrong", "wrong"])
    assert b.groups() == ["all_correct", "all_wrong", "no_answer", "mixed"]
    same = behaviour(["correct", "wrong", "wrong", "wrong"], pays=[0.5] * 4)  # the reward ignores correctness
    assert same.groups() == ["same_reward"]


def test_the_total_is_trls_weighted_sum_with_masked_values_left_out():
    b = behaviour(["correct", "wrong"], group=2, a=[1.0, None], b=[0.5, 0.5])
    b.weights = {"a": 2.0, "b": 1.0}
    assert b.totals == [2.5, 0.5]


def test_a_task_far_too_hard_fails_saying_so():
    check = {c.name: c for c in checks(behaviour(["wrong"] * 16), SCORER, 40, THRESHOLDS, "data.params.chain_sum")}
    flat = check["flat_groups"]
    assert flat.status == "fail" and flat.figures["share"] == 1.0
    assert flat.verdict.startswith("100% of groups are all-wrong: GRPO has no advantage to learn from")
    assert "too hard for this model at this difficulty; lower data.params.chain_sum" in flat.verdict
    assert "sft_then_grpo" in flat.verdict


def test_a_task_far_too_easy_and_a_reward_that_ignores_the_answer_fail_saying_so():
    easy = {c.name: c for c in checks(behaviour(["correct"] * 8), SCORER, 40, THRESHOLDS, "data.params.x")}
    assert "too easy for this model; raise data.params.x" in easy["flat_groups"].verdict
    blind = behaviour(["correct", "wrong", "wrong", "wrong"] * 2, pays=[0.5] * 8)
    verdict = {c.name: c for c in checks(blind, SCORER, 40, THRESHOLDS, "x")}["flat_groups"].verdict
    assert "pays right and wrong answers alike" in verdict


def test_mixed_groups_pass_and_report_the_spread():
    found = {c.name: c for c in checks(behaviour(["correct", "wrong"] * 8), SCORER, 40, THRESHOLDS, "x")}
    assert all(c.status == "pass" for c in found.values()), [c.verdict for c in found.values()]
    assert found["rewards"].figures["correctness"] == {"mean": 0.5, "std": 0.5, "masked": 0}
    assert found["flat_groups"].figures["flat"] == 0


def test_cut_off_and_unreadable_completions_fail_naming_the_setting():
    found = {c.name: c for c in checks(behaviour(["unparseable"] * 8, truncated=0.75), SCORER, 40, THRESHOLDS, "x")}
    assert found["truncation"].status == "fail" and "train.max_completion_length=40" in found["truncation"].verdict
    assert found["parse_rate"].status == "fail" and "as the reply's last number" in found["parse_rate"].verdict
    assert found["flat_groups"].verdict.startswith("100% of groups are no-answer")


def test_cut_off_completions_that_state_an_answer_are_a_warning():
    """A reply that answers and then rambles past the budget is cut, but scored: the answer is not lost."""
    found = {c.name: c for c in checks(behaviour(["correct", "wrong"] * 4, truncated=0.75), SCORER, 16, THRESHOLDS,
                                       "x")}
    check = found["truncation"]
    assert check.status == "warn" and check.figures["truncated"] == 0.75 and check.figures["truncated_unreadable"] == 0
    assert "only 0% before a readable answer" in check.verdict and "train.max_completion_length" in check.verdict


def test_a_reward_that_pays_everyone_the_same_is_a_warning():
    b = behaviour(["correct", "wrong"] * 4, correctness=[1.0, 0.0] * 4, format=[0.0] * 8)
    found = {c.name: c for c in checks(b, SCORER, 40, THRESHOLDS, "x")}
    assert found["rewards"].status == "warn" and found["rewards"].verdict.startswith("format paid every")


def test_one_completion_per_prompt_has_no_groups_to_compare():
    found = {c.name: c for c in checks(behaviour(["wrong"] * 4, group=1), SCORER, 40, THRESHOLDS, "x")}
    assert found["flat_groups"].status == "skip"


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left"))


def test_the_generation_settings_are_trls(tiny):
    """What GRPOTrainer builds from the same settings: length, sampling, stop tokens."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.train.trl_bridge import checkpointing

    model, tok = tiny
    extra = {"top_k": 5, "repetition_penalty": 1.1}
    args = GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=9, temperature=0.7, top_p=0.9, use_cpu=True, report_to=[], bf16=False,
                      **extra, **checkpointing(False))
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=args,
                          train_dataset=Dataset.from_list([{"prompt": "hi"}] * 8), processing_class=tok)
    ours = generation_config({"max_completion_length": 9, "temperature": 0.7, "top_p": 0.9}, extra, model, tok)
    for key in ("max_new_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "eos_token_id",
                "pad_token_id", "do_sample"):
        assert getattr(ours, key) == getattr(trainer.generation_config, key), key


@pytest.mark.parametrize("engine", [True, False])
def test_sampling_gives_each_prompt_its_group_and_says_what_was_cut(tiny, engine):
    model, tok = tiny
    rows = [{"prompt": [{"role": "user", "content": q}]} for q in ("2+3?", "what is 10 - 4?")]
    config = generation_config({"max_completion_length": 6}, {}, model, tok)
    torch.manual_seed(0)
    ids, cut = sample(model, tok, rows, 3, config, engine=engine)
    assert len(ids) == len(cut) == 6
    for completion, was_cut in zip(ids, cut):
        assert 1 <= len(completion) <= 6
        assert was_cut == (completion[-1] != tok.eos_token_id)
        assert not was_cut or len(completion) == 6


def test_scoring_calls_the_suite_as_trl_does():
    suite = RewardSuite({"correctness": Correctness()}, isolation="thread")
    tok = SimpleNamespace(batch_decode=lambda ids, skip_special_tokens: ["The answer is 7." if i[0] else "no idea"
                                                                        for i in ids])
    rows = [{"prompt": [{"role": "user", "content": "3+4?"}], "answer": "7", "task": "qa", "entry": "{}"}]
    try:
        b = score(rows, [[1], [0]], [False, True], 2, tok, SCORER, suite.trl_functions(SCORER))
    finally:
        suite.close()
    assert b.rewards == {"correctness": [1.0, 0.0]} and [s.status for s in b.scores] == ["correct", "unparseable"]
    assert b.metrics["score/parse_rate"] == 0.5  # what the suite logs, through TRL's log_metric
    assert b.groups() == ["mixed"] and b.truncated == [False, True]


def test_the_timed_steps_reward_calls_join_the_sample():
    """What TRL handed the reward functions in the timed step (each prompt's group consecutive) is a sample too."""
    completions = [[{"role": "assistant", "content": t}] for t in ("The answer is 7.", "8", "The answer is 7.", "7")]
    kwargs = {"prompts": [[{"role": "user", "content": "3+4?"}]] * 4, "completions": completions,
              "completion_ids": [[5, 2], [6, 9], [5, 2], [7, 2]], "answer": ["7"] * 4, "trainer_state": None}
    calls = [("correctness", kwargs, [1.0, 0.0, 1.0, 1.0])]
    step = from_calls(calls, 2, SCORER, stops={2}, weights={"correctness": 1.0})
    assert step.groups() == ["mixed", "all_correct"] and step.truncated == [False, True, False, False]
    assert [s.status for s in step.scores] == ["correct", "wrong", "correct", "correct"]
    both = behaviour(["wrong"] * 2, group=2) + step
    assert len(both.texts) == 6 and both.groups() == ["all_wrong", "mixed", "all_correct"]
    assert from_calls([], 2, SCORER, {2}, {}) is None
