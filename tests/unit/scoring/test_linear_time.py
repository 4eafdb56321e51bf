"""Extraction on 100,000-character adversarial completions, one per kind of marker: each is scored and gives
the answer the rules say (these inputs took seconds each when the block search or math-verify rescanned the
text from every unclosed marker; ``python bench/extraction.py`` prints the time against the length)."""

from __future__ import annotations

import pytest

from rlvr.scoring import AnswerFormat, MathVerifier, NumberVerifier, Scorer, is_well_formatted
from rlvr.scoring.extract import answer_block, blocks, extract_answer, unboxed
from rlvr.scoring.verifiers import braces_balance, math_parse

N = 100_000
TAGS = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False)
SEEDS = AnswerFormat(answer_start="<SOLUTION>", answer_end="</SOLUTION>",
                     reasoning_start="<start_working_out>", reasoning_end="<end_working_out>",
                     fallback_last_number=False)
PLAIN = AnswerFormat()
GSM8K = AnswerFormat(answer_style="gsm8k")


def repeat(unit: str, n: int = N) -> str:
    return unit * (n // len(unit))


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        (repeat("<answer>"), TAGS, None),  # unclosed: no block
        (repeat("<answer>") + "72</answer>", TAGS, "72"),  # one block: its one number (the format rewards refuse it)
        (repeat("</answer>"), TAGS, None),  # stray closing markers
        (repeat("<answer></answer>"), TAGS, None),  # thousands of empty blocks: ambiguous
        (repeat("<think>") + "<answer>72</answer>", TAGS, "72"),  # the answer block is still read
        (repeat("<SOLUTION>"), SEEDS, None),
        (repeat("<start_working_out>") + "<SOLUTION>72</SOLUTION>", SEEDS, "72"),
        ("<answer>" + repeat("\\boxed{") + "</answer>", TAGS, None),  # unclosed boxes around nothing: no number
        ("<answer>" + repeat("\\boxed{") + "72" + "}" * (N // 7) + "</answer>", TAGS, "72"),  # nested boxes
        (repeat("\\boxed{") + " 72", PLAIN, "72"),
        (repeat("(9") + ")", PLAIN, "-9"),  # the last one is bracketed: accounting's -9 in this format
        (repeat("1,") + "72", PLAIN, None),  # a list of candidates ends the reply: no single answer
        (repeat("9"), PLAIN, None),  # 100,000 digits: too large to be anyone's answer, refused unread
        (repeat("#### "), GSM8K, None),  # answer lines without a number: ambiguous
        ("#### 72 " + repeat("#"), GSM8K, None),  # one answer line, then a run of hashes: several
        ("#### 72 " + repeat("and then 13 "), GSM8K, "72"),
        (repeat("The answer is ") + "72", GSM8K, "72"),
        (repeat("The answer is 5. ") + "So 72", GSM8K, "5"),
        (repeat("answer is: ") + "so", GSM8K, None),  # no number anywhere
    ],
    ids=["answer-open", "answer-open-closed-once", "answer-stray-close", "empty-blocks", "think-open",
         "solution-open", "working-open", "boxed-open-in-block", "boxed-nested", "boxed-open-plain",
         "paren-open", "comma-list", "digits", "hashes", "hash-run", "hashes-then-talk", "answer-is",
         "answer-is-5", "answer-is-colon"],
)
def test_adversarial_completion_gives_the_rule_s_answer(text, fmt, expected):
    assert len(text) >= N - 20
    assert extract_answer(text, fmt) == expected
    is_well_formatted(text, fmt)  # the format rewards read the same text


def test_blocks_and_answer_block_on_unclosed_markers():
    text = repeat("<answer>")
    assert blocks(text, "<answer>", "</answer>") == []
    assert answer_block(text, TAGS) is None
    assert not is_well_formatted(text, TAGS)
    # a block is closed by the first end marker after it; the unclosed tail adds nothing
    assert blocks("<answer>1</answer>" + text, "<answer>", "</answer>") == ["1"]


def test_unboxed_counts_braces_once():
    assert unboxed(repeat("\\boxed{")) == repeat("\\boxed{")
    deep = "\\boxed{" * 1000 + "72" + "}" * 1000
    assert unboxed(deep) == "\\boxed{" * 999 + "72" + "}" * 999


@pytest.mark.parametrize("text", [repeat("\\boxed{"), repeat("{"), repeat("}{")])
def test_unbalanced_latex_never_reaches_math_verify(text):
    assert not braces_balance(text)
    assert math_parse(text) == []
    score = Scorer(TAGS, MathVerifier())(f"<answer>{text}</answer>", {"answer": "72"})
    assert score.status == "unparseable"


def test_long_replies_still_score_right_and_wrong():
    scorer = Scorer(TAGS, NumberVerifier())
    think = "<think>" + repeat("step 1, ") + "</think>"
    assert scorer(think + "<answer>72</answer>", {"answer": "72"}).status == "correct"
    assert scorer(think + "<answer>71</answer>", {"answer": "72"}).status == "wrong"
