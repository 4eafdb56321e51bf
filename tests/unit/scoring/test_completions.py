"""gold_completion: a completion in each answer format (last number, answer markers, reasoning markers in both
marker styles, GSM8K's "#### N") that is well formatted and scores correct with the real scorer on chain_sum and
GSM8K rows."""

from __future__ import annotations

import pytest

from rlvr.data import PromptTemplate
from rlvr.scoring import MARKER_STYLES, AnswerFormat, Scorer, extract_answer, is_well_formatted
from rlvr.scoring.completions import gold_completion
from tests.conftest import FIXTURES, build_group, compose

FORMATS = {
    "last_number": AnswerFormat(),
    "answer_markers": AnswerFormat(answer_tag="answer", fallback_last_number=False),
    "reasoning_markers": AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False),
    "working_out": AnswerFormat(**MARKER_STYLES["working_out"], fallback_last_number=False),
    "gsm8k": AnswerFormat(answer_style="gsm8k", fallback_last_number=False),
}


@pytest.fixture(scope="module")
def rows() -> dict[str, tuple[list[dict], object]]:
    """chain_sum rows (the default data) and GSM8K fixture rows, each with its data's verifier."""
    chain = build_group(compose(["data.train_size=24", "data.test_size=4"]), "data")
    gsm8k = build_group(compose(["data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.train_size=null",
                                 "data.test_size=4"]), "data")
    return {name: (data.load(PromptTemplate()).train.to_list(), data.verifier)
            for name, data in (("chain_sum", chain), ("gsm8k", gsm8k))}


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
@pytest.mark.parametrize("data", ["chain_sum", "gsm8k"])
def test_every_built_completion_is_well_formatted_and_scores_correct(rows, data, fmt):
    train, verifier = rows[data]
    scorer = Scorer(fmt, verifier)
    assert len(train) >= 16
    for row in train:
        completion = gold_completion(row["answer"], fmt)
        assert scorer(completion, row).correct, (completion, row["answer"])
        assert is_well_formatted(completion, fmt), completion


def test_the_shape_of_each_format():
    assert gold_completion("-7", FORMATS["last_number"]) == "The answer is -7."
    assert gold_completion(" 42 ", FORMATS["answer_markers"]) == "<answer>42</answer>"
    assert gold_completion("42", FORMATS["reasoning_markers"], reasoning="Add them: {answer}.") == \
        "<think>\nAdd them: 42.\n</think>\n<answer>42</answer>"
    assert gold_completion("42", FORMATS["working_out"]).endswith("<end_working_out>\n<SOLUTION>42</SOLUTION>")
    assert gold_completion("-7", FORMATS["gsm8k"]) == "#### -7"


def test_a_gold_the_format_cannot_carry_is_not_scored_correct():
    """A word where the last number is read: the completion says it, the extractor finds no number."""
    completion = gold_completion("Paris", FORMATS["last_number"])
    assert extract_answer(completion, FORMATS["last_number"]) is None
