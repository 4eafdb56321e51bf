"""The GSM8K answer style (``prompts=gsm8k``, the default of ``data=gsm8k``): the answer is the number right
after ``####``, else after the last "answer is", else the last number; and a number in brackets is an aside
there, while FinQA keeps reading ``(12)`` as -12."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.scoring import FinQAVerifier, NumberVerifier, Scorer, canonical_number, is_well_formatted
from rlvr.scoring.completions import gold_completion
from rlvr.scoring.extract import answer_block, extract_answer, numbers_in
from rlvr.scoring.formats import MARKER_STYLES, AnswerFormat
from tests.conftest import FIXTURES, build_group, compose

GSM8K = AnswerFormat(answer_style="gsm8k")
GSM8K_STRICT = AnswerFormat(answer_style="gsm8k", fallback_last_number=False)
WORKING_OUT = AnswerFormat(**MARKER_STYLES["working_out"], fallback_last_number=False)  # FinQA's usual prompt
PLAIN = AnswerFormat()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("... #### 72 and then more talk 13", "72"),  # the number after ####, not the last number
        ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72"),
        ("#### $1,234.50 in all", "1234.5"),
        ("####72", "72"),
        ("#### -5 degrees", "-5"),
        ("#### \u0667\u0662", "72"),  # Arabic-Indic digits
        ("#### \uff17\uff12", "72"),  # full-width digits
        ("#### 7.2e1", "72"),  # scientific notation reads whole
        ("#### (42)", "42"),  # an aside, not accounting
        ("The answer is 72. I also counted 13 ducks.", "72"),
        ("the final answer is: $72, from 9 * 8", "72"),
        ("The answer is 5? No: the answer is 72. (9 * 8)", "72"),  # the last one said
        ("The answer is not 5; the answer is 72, not 70", "72"),  # the last one followed by a number
        ("The answer is 5.\n#### 72", "72"),  # #### first
        ("9 * 8 = 72", "72"),  # neither: the last number
        # no answer: the rule decided, and never falls back past a ####
        ("#### 1\n#### 2", None),  # several answer lines: ambiguous
        ("#### 72\n#### 72", "72"),  # several answer lines that agree
        ("#### 40\nWait, that is wrong.\n#### 42", "42"),  # a correction: the last line counts
        ("#### Step 1\n3 + 4 = 7\n#### 7", "7"),  # a markdown heading is not an answer line
        ("#### 1. Add the terms\n3 + 4 = 7\n#### 7", "7"),  # nor is a numbered one
        ("#### 7 or 8", None),  # a hedge
        ("#### 5-8", None),  # a range where one value is asked
        ("#### 5/8", "0.625"),  # a fraction read whole
        ("The answer is 40. Wait, it is 42.", "42"),  # a retraction after the last "answer is"
        ("The answer is 40.\n**Final answer: 42**", "42"),  # a later bold final answer
        ("#### seventy-two, from 9 * 8", None),
        ("####", None),
        ("no numbers", None),
        ("", None),
    ],
)
def test_gsm8k_extraction(text, expected):
    assert extract_answer(text, GSM8K) == expected


def test_gsm8k_without_fallback_needs_an_answer_line():
    assert extract_answer("9 * 8 = 72", GSM8K_STRICT) is None
    assert extract_answer("The answer is 72.", GSM8K_STRICT) == "72"
    assert extract_answer("so\n#### 72", GSM8K_STRICT) == "72"


@pytest.mark.parametrize(
    ("text", "written", "formatted"),
    [
        ("9 * 8 = 72\n#### 72", "72", True),
        ("9 * 8 = 72\n#### $72.\n", "$72", True),
        ("#### 72 and then more talk 13", "72", False),  # the answer line must end the reply
        ("#### $1,234 in all.", "$1,234", False),
        ("The answer is 72.", "72", False),  # the prompt asks for ####
        ("#### 72\n#### 72", "72", False),
        ("#### seventy-two", None, False),
        ("72", None, False),
    ],
)
def test_gsm8k_answer_as_written_and_format(text, written, formatted):
    assert answer_block(text, GSM8K) == written
    assert is_well_formatted(text, GSM8K) is formatted


@pytest.mark.parametrize(
    ("text", "fmt", "gold", "status"),
    [
        # GSM8K: a bracket is an aside
        ("The total is 72 (42 + 30).\n#### 72", GSM8K, "72", "correct"),
        ("#### (42)", GSM8K, "42", "correct"),
        ("#### (42)", GSM8K, "-42", "wrong"),
        ("She has (42) left", GSM8K, "42", "correct"),
        # FinQA (its working_out prompt, its verifier): the accounting reading stays
        ("<start_working_out>loss<end_working_out><SOLUTION>(12)</SOLUTION>", WORKING_OUT, "-12", "correct"),
        ("<start_working_out>loss<end_working_out><SOLUTION>($1,234)</SOLUTION>", WORKING_OUT, "-1234", "correct"),
        ("<start_working_out>loss<end_working_out><SOLUTION>(12)</SOLUTION>", WORKING_OUT, "12", "wrong"),
    ],
)
def test_parentheses_per_format(text, fmt, gold, status):
    verifier = NumberVerifier() if fmt is GSM8K else FinQAVerifier()
    assert Scorer(fmt, verifier)(text, {"answer": gold, "question": "what was the net change?"}).status == status


def test_the_parentheses_switch_reads_numbers_both_ways():
    assert canonical_number("(42)") == "-42" and canonical_number("(42)", negative_parentheses=False) == "42"
    assert numbers_in("a (42) b", negative_parentheses=False) == ["42"]
    assert not GSM8K.parentheses_negate and PLAIN.parentheses_negate and WORKING_OUT.parentheses_negate
    # the switch overrides the style either way
    assert extract_answer("#### (42)", AnswerFormat(answer_style="gsm8k", negative_parentheses=True)) == "-42"
    assert extract_answer("so (42)", AnswerFormat(negative_parentheses=False)) == "42"


def test_gsm8k_style_takes_no_answer_markers():
    with pytest.raises(ConfigError, match="answer_style=gsm8k"):
        AnswerFormat(answer_tag="answer", answer_style="gsm8k")
    with pytest.raises(ConfigError, match="answer_style"):
        AnswerFormat(answer_style="hashes")  # type: ignore[arg-type]


def test_data_gsm8k_picks_the_gsm8k_prompt_unless_told_otherwise():
    prompt = build_group(compose(["data=gsm8k"]), "prompts")
    assert prompt.answer_format.answer_style == "gsm8k" and not prompt.answer_format.parentheses_negate
    assert "####" in prompt.messages("q")[0]["content"]
    chosen = build_group(compose(["data=gsm8k", "prompts=xml_tags"]), "prompts")
    assert chosen.answer_format.answer_markers == ("<answer>", "</answer>")
    experiment = build_group(compose(["experiment=gsm8k_qwen_grpo_lora"]), "prompts")
    assert experiment.answer_format.answer_markers == ("<answer>", "</answer>")
    for other in (["data=finqa"], []):
        assert build_group(compose(other), "prompts").answer_format.answer_style == "last_number"


def test_gsm8k_gold_completions_score_correct_on_gsm8k_rows():
    cfg = compose(["data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.train_size=null", "data.test_size=4"])
    data, prompt = build_group(cfg, "data"), build_group(cfg, "prompts")
    scorer = Scorer(prompt.answer_format, data.verifier)
    rows = data.load(prompt).train.to_list()
    assert len(rows) >= 16
    for row in rows:
        completion = gold_completion(row["answer"], prompt.answer_format)
        assert completion == f"#### {row['answer']}"
        assert scorer(completion, row).correct and is_well_formatted(completion, prompt.answer_format)
