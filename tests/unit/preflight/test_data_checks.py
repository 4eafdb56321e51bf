"""The data checks, each shown passing on what ships and failing on a job built to fail it: prompts over the prompt
budget, gold answers refused at load, held-out questions seen in training, a prompt that asks for another format
than the scorer reads (or one this data's answers cannot be written in), and a reward the audit catches."""

from __future__ import annotations

import pytest

from rlvr.preflight.data import (
    check_answer_format,
    check_audit,
    check_gold_answers,
    check_overlap,
    check_prompt_length,
    prompt_tokens,
)
from rlvr.rewards import RewardSuite
from rlvr.scoring import Scorer
from tests.conftest import build_group, compose
from tests.unit.audit.test_audit import ContainsGold

SMALL = ["data.train_size=60", "data.test_size=8"]


def job(overrides: list[str]):
    """``(prompts, rows, scorer)`` of a composed config."""
    cfg = compose([*SMALL, *overrides])
    data, prompts = build_group(cfg, "data"), build_group(cfg, "prompts")
    rows = data.load(prompts).train.to_list()
    return prompts, rows, Scorer(prompts.answer_format, data.verifier)


def test_prompt_tokens_are_the_chat_template_with_the_generation_prompt(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = [{"role": "user", "content": "2+2?"}]
    text = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert prompt_tokens(tokenizer, [prompt]) == [len(tokenizer(text)["input_ids"])]


def test_prompts_over_the_budget_fail_and_name_the_settings():
    fits = check_prompt_length([40, 47], [47], (8192, "the model's context"), (40, "train.max_completion_length"),
                               (8192, "the model's context"), (40, "eval.max_new_tokens"), 0.0)
    assert fits.status == "pass" and fits.figures["train_budget"] == 8152
    cut = check_prompt_length([40, 100, 300], [47], (128, "train.max_length"), (40, "train.max_completion_length"),
                              (8192, "the model's context"), (40, "eval.max_new_tokens"), 0.0)
    assert cut.status == "fail" and cut.figures["train_over"] == 2
    assert "2 of 3 train prompts (67%, the longest 300 tokens)" in cut.verdict
    assert "they would be cut" in cut.verdict and "Raise train.max_length" in cut.verdict
    assert check_prompt_length([40, 100, 300], [], (128, "train.max_length"), (40, "x"), None, (0, "y"),
                               0.7).status == "pass"  # within preflight.max_truncated_prompts


def test_refused_gold_answers_fail_above_the_threshold():
    stats = {"train_rows": 90, "test_rows": 10, "train_skipped": 8, "test_skipped": 2,
             "skipped/answer: not a valid integer answer": 10}
    check = check_gold_answers(stats, 0.05)
    assert check.status == "fail" and check.figures["refused"] == 10
    assert "answer: not a valid integer answer: 10" in check.summary and "data.answer_type" in check.verdict
    assert check_gold_answers(stats, 0.2).status == "pass"
    assert check_gold_answers({"train_rows": 5, "test_rows": 1}, 0.0).status == "pass"


def test_held_out_questions_seen_in_training_fail():
    train = [{"question": "What is 2 + 2?"}, {"question": "What is 3 + 3?"}]
    assert check_overlap(train, [{"question": "What is 4 + 4?"}], {}, 0.0).status == "pass"
    seen = check_overlap(train, [{"question": "what is  2 + 2?"}, {"question": "x"}], {}, 0.0)  # case, spacing
    assert seen.status == "fail" and seen.figures["shared"] == 1 and "recall" in seen.verdict
    # a row without a question column: the last user message of its prompt
    chat = [{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "What is 3 + 3?"}]}]
    assert check_overlap(train, chat, {}, 0.0).figures["shared"] == 1


@pytest.mark.parametrize(("prompt", "reward"), [("last_number", "verifier"), ("gsm8k", "verifier"),
                                                ("xml_tags", "verifier_format"), ("working_out", "math_reasoning")])
def test_every_shipped_prompt_asks_for_what_the_scorer_reads(prompt, reward):
    prompts, rows, scorer = job([f"prompts={prompt}", f"reward={reward}"])
    check = check_answer_format(prompts, rows, scorer, 0.95)
    assert check.status == "pass", check.verdict
    assert check.figures["gold_in_format_correct"] == 1.0


def test_a_prompt_asking_for_another_format_fails():
    prompts, rows, scorer = job(["prompts=xml_tags", "prompts.system='Solve it, then end with a line #### <number>.'"])
    check = check_answer_format(prompts, rows, scorer, 0.95)
    assert check.status == "fail"
    assert "never names <answer>, </answer>, <think>, </think>" in check.verdict
    assert "the prompt asks for '####', but the scorer reads the answer between <answer> and </answer>" in check.verdict
    assert check.figures["gold_as_####_correct"] == 0.0


def test_another_format_the_scorer_also_reads_is_not_a_failure():
    """The last-number scorer reads an answer written after '####' too: asking for it is fine."""
    prompts, rows, scorer = job(["prompts.system='Solve it, then end with a line #### <number>.'"])
    check = check_answer_format(prompts, rows, scorer, 0.95)
    assert check.status == "pass" and check.figures["gold_as_####_correct"] == 1.0


def test_a_format_that_cannot_carry_the_answers_fails():
    """A matrix where the last number is read: rotate_matrix's answers, in the default prompt's format."""
    prompts, rows, scorer = job(["data.task=rotate_matrix"])
    check = check_answer_format(prompts, rows, scorer, 0.95)
    assert check.status == "fail" and check.figures["gold_in_format_correct"] < 0.5
    assert "cannot carry" in check.verdict and "prompts=xml_tags" in check.verdict
    prompts, rows, scorer = job(["data.task=rotate_matrix", "prompts=xml_tags"])  # the answer block carries it
    assert check_answer_format(prompts, rows, scorer, 0.95).status == "pass"


def test_the_audit_passes_the_shipped_reward_and_fails_a_lax_one():
    prompts, rows, scorer = job([])
    fair = RewardSuite({"correctness": build_group(compose([]), "reward").functions["correctness"]},
                       isolation="thread")
    lax = RewardSuite({"contains_gold": ContainsGold()}, isolation="thread")
    try:
        assert check_audit(rows[:16], scorer, fair, 0.1, 0).status == "pass"
        caught = check_audit(rows[:16], scorer, lax, 0.1, 0)
        assert caught.status == "fail" and "python -m rlvr.audit" in caught.verdict
        assert caught.figures["hacks"]["long"] > 0.1
    finally:
        fair.close()
        lax.close()
