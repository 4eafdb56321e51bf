"""Answer extraction and number normalisation: the known extraction bugs, each a row of a table."""

from __future__ import annotations

import pytest

from rlvr.scoring.extract import (
    answer_block,
    canonical_number,
    extract_answer,
    last_number,
    numbers_in,
)
from rlvr.scoring.formats import AnswerFormat

TAGS = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False)
TAGS_FALLBACK = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=True)
SEEDS = AnswerFormat(answer_start="<SOLUTION>", answer_end="</SOLUTION>",
                     reasoning_start="<start_working_out>", reasoning_end="<end_working_out>",
                     fallback_last_number=False)
PLAIN = AnswerFormat()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", "42"),
        ("18.0", "18"),
        ("0.50", "0.5"),
        ("-5", "-5"),
        ("\u22125", "-5"),  # unicode minus
        ("+5", "5"),
        ("$80,000", "80000"),  # opencompass#2426
        ("$1,234.00", "1234"),  # not 234
        ("-$5", "-5"),
        ("$-5", "-5"),
        ("(12)", "-12"),  # accounting negative
        ("($1,234.56)", "-1234.56"),
        ("12.5%", "12.5"),
        ("42.", "42"),
        ("  7  ", "7"),
        ("\u0664\u0662", "42"),  # Arabic-Indic digits
        ("\uff14\uff12", "42"),  # full-width digits
        ("9" * 60, "9" * 60),  # more digits than Decimal's default precision
        ("-0", "0"),
        ("1,2345", None),  # not a thousands grouping
        ("1e5", "100000"),  # scientific notation is the number it writes, not its mantissa
        ("2.5e-3", "0.0025"),
        ("10²", "100"),  # a superscript is a power, not a digit dropped
        ("(12", None),
        ("seven", None),
        ("", None),
        ("1/2", "0.5"),  # a fraction is read whole
        ("1 1/2", "1.5"),
        ("7 or 8", None),
        ("x+2", None),
        ("0x1f", None),
    ],
)
def test_canonical_number(text, expected):
    assert canonical_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 + 4 = 7", ["3", "4", "7"]),
        ("It fell to -5 degrees.", ["-5"]),
        ("Paid $80,000 for 2 cars", ["80000", "2"]),
        ("x1 and v2.0", []),  # digits inside words are not numbers
        ("10\u00b2 = 100", ["100", "100"]),
        ("", []),
    ],
)
def test_numbers_in(text, expected):
    assert numbers_in(text) == expected


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        # the marked answer, however the rest of the reply looks
        ("<think>6 * 7</think><answer>42</answer>", TAGS, "42"),
        ("<think>6 * 7</think><answer>42</answer> Actually maybe 43 or 44.", TAGS, "42"),  # not the last number
        ("<answer> 42 </answer>", TAGS, "42"),
        ("<answer>$80,000</answer> (was 79,000)", TAGS, "80000"),
        ("<answer>-5</answer>", TAGS, "-5"),
        ("<answer>(1,234)</answer>", TAGS, "-1234"),
        ("<answer>\u0664\u0662</answer>", TAGS, "42"),
        ("<answer>" + "9" * 400 + "</answer>", TAGS, "9" * 400),
        ("<answer>72 apples</answer>", TAGS, "72"),
        ("<answer>x = 72</answer>", TAGS, "72"),
        ("<answer>\\boxed{72}</answer>", TAGS, "72"),
        ("<answer>x^2</answer>", TAGS, None),  # not the number 2
        ("<answer>\\sqrt{2}</answer>", TAGS, None),
        ("<answer>3 + 4 = 7</answer>", TAGS, "7"),  # what follows the last "="
        ("<answer>Paris</answer>", TAGS, None),  # no number (a text answer is read by its own type)
        # no answer: unparseable
        ("<answer>1</answer><answer>2</answer>", TAGS, None),  # several answer tags: spraying guesses
        ("<answer>42</answer>" * 50, TAGS, None),  # the answer repeated many times
        ("<answer></answer>", TAGS, None),
        ("<answer>   </answer>", TAGS, None),
        ("<answer>\\boxed{}</answer>", TAGS, None),
        ("<answer>42", TAGS, None),  # unclosed
        ("42</answer>", TAGS, None),  # stray closing marker
        ("<think>so the answer is 42</think>", TAGS, None),  # the answer only in the reasoning
        ("The answer is 42.", TAGS, None),
        ("", TAGS, None),
        # fallback to the last number only when configured, and never past a stray marker
        ("<think>so the answer is 42</think>", TAGS_FALLBACK, "42"),
        ("<answer>42 and then 43", TAGS_FALLBACK, None),
        # the seeds' markers
        ("<start_working_out>6*7<end_working_out><SOLUTION>42</SOLUTION>", SEEDS, "42"),
        ("<start_working_out>6*7<end_working_out><SOLUTION>42</SOLUTION><SOLUTION>43</SOLUTION>", SEEDS, None),
        ("<SOLUTION></SOLUTION> 72", SEEDS, None),  # a number after an empty block is not the answer
        # no markers: the last number of the reply
        ("so 3 + 4 = 7", PLAIN, "7"),
        ("The total is $1,234.00.", PLAIN, "1234"),
        ("It is -5.", PLAIN, "-5"),
        ("no numbers here", PLAIN, None),
        ("", PLAIN, None),
    ],
)
def test_extract_answer(text, fmt, expected):
    assert extract_answer(text, fmt) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer> 42 </answer>", " 42 "),
        ("<answer>1</answer><answer>2</answer>", None),
        ("42", None),
    ],
)
def test_answer_block_is_raw(text, expected):
    assert answer_block(text, TAGS) == expected


def test_answer_block_needs_markers():
    assert answer_block("<answer>42</answer>", PLAIN) is None


def test_last_number_of_huge_reply_is_fast_and_exact():
    text = "1 " * 20000 + "and finally 12345678901234567890123456789"
    assert last_number(text) == "12345678901234567890123456789"
