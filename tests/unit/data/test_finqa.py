"""data=finqa on a few FinQA-format records built here: the table readable in the prompt, gold answers from
exe_ans or answer (percentages, accounting formats, yes/no), bad rows skipped, rounding handled."""

from __future__ import annotations

import json

import pytest

from rlvr.data import FinQAData, PromptTemplate
from rlvr.data.finqa import gold_answer, linearise_table
from rlvr.errors import ConfigError
from rlvr.scoring import Scorer
from tests.conftest import build_group, compose

TABLE = [["", "2016", "2015"], ["net revenue", "$ 5,829", "$ 5,735"], ["growth | pct", "1.6%", ""]]


def record(i, exe_ans, question="what was the change in net revenue?", **extra):
    return {
        "id": f"ETR/2016/page_{i}.pdf-1",
        "pre_text": ["entergy reported the following .", "amounts in millions ."],
        "post_text": ["the increase is due to pricing ."],
        "table": TABLE,
        "qa": {"question": f"{question} ({i})", "program": "subtract(5829, 5735)", "exe_ans": exe_ans, **extra},
    }


def write(path, records):
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def finqa_dir(tmp_path):
    train = [record(i, 94.0) for i in range(6)] + [
        record(10, 0.01603, question="what is the growth rate?"),
        record(11, "yes", question="did revenue grow?"),
        record(12, None, answer="14.3%"),  # exe_ans empty: the annotated answer is used
        record(13, "n/a"),  # not a number: skipped
        {"id": "broken", "table": TABLE},  # no question: skipped
        {"pre_text": [], "post_text": [], "table": [], "question": "flat question?", "answer": "$ (1,234)"},  # flat
    ]
    write(tmp_path / "train.json", train)
    write(tmp_path / "test.json", [record(100, 94.0), record(101, 0.14286)])
    return tmp_path


def test_table_is_a_markdown_table():
    assert linearise_table(TABLE) == (
        "|  | 2016 | 2015 |\n| --- | --- | --- |\n| net revenue | $ 5,829 | $ 5,735 |\n| growth / pct | 1.6% |  |")
    assert linearise_table([["a"], ["b", "c"]]) == "| a |  |\n| --- | --- |\n| b | c |"
    assert linearise_table([]) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [(94.0, "94"), (0.14286, "0.14286"), (1e-05, "0.00001"), (-3, "-3"), ("94%", "94"), ("$ 1,234", "1234"),
     ("(12)", "-12"), ("YES", "yes"), ("no", "no"), ("n/a", None), ("", None), (float("nan"), None),
     (float("inf"), None), (True, "yes")],
)
def test_gold_answer(value, expected):
    assert gold_answer(value) == expected


def test_rows_from_finqa_json(finqa_dir, caplog):
    data = build_group(compose(["data=finqa", f"data.path={finqa_dir}", "data.test_size=null"]), "data")
    splits = data.load(PromptTemplate(user="{question}"))
    rows = {json.loads(r["entry"])["id"]: r for r in splits.train.to_list()}
    assert splits.stats["train_skipped"] == 2 and splits.stats["skipped/qa.exe_ans: not a number or yes/no"] == 1
    assert splits.stats["skipped/qa.question: missing"] == 1
    assert len(splits.train) == 10 and len(splits.test) == 2
    first = rows["ETR/2016/page_0.pdf-1"]
    assert first["task"] == "finqa" and first["answer"] == "94"
    text = first["prompt"][-1]["content"]
    assert text.index("entergy reported") < text.index("| net revenue | $ 5,829 | $ 5,735 |") < text.index(
        "the increase is due") < text.index("Question: what was the change in net revenue? (0)")
    assert json.loads(first["entry"])["program"] == "subtract(5829, 5735)"
    assert rows["ETR/2016/page_11.pdf-1"]["answer"] == "yes"
    assert rows["ETR/2016/page_12.pdf-1"]["answer"] == "14.3"
    assert rows[None]["answer"] == "-1234" and rows[None]["question"].endswith("Question: flat question?")


def test_without_text_only_table_and_question(finqa_dir):
    splits = FinQAData(path=str(finqa_dir), include_text=False).load(PromptTemplate())
    text = splits.test[0]["question"]
    assert "entergy" not in text and text.startswith("|  | 2016 | 2015 |") and "Question:" in text


@pytest.mark.parametrize(
    ("answer", "gold", "status"),
    [
        ("94", "94", "correct"),
        ("$94", "94", "correct"),
        ("94.0%", "94", "correct"),
        ("0.94", "94", "correct"),  # a fraction where the gold is in percent
        ("1.6%", "0.01603", "correct"),  # percentages, rounded
        ("1.60%", "0.01603", "correct"),
        ("0.016", "0.01603", "correct"),
        ("1.7%", "0.01603", "wrong"),
        ("95", "94", "wrong"),
        ("(1,234)", "-1234", "correct"),
        ("-1,234", "-1234", "correct"),
        ("1234", "-1234", "wrong"),
        ("Yes", "yes", "correct"),
        ("no", "yes", "wrong"),
        ("about ninety", "94", "unparseable"),
        ("", "94", "unparseable"),
        ("94", "n/a", "bad_gold"),
    ],
)
def test_finqa_verifier_through_the_scorer(answer, gold, status):
    fmt = PromptTemplate(answer_tag="answer", fallback_last_number=False).answer_format
    row = {"answer": gold, "question": "what was the percentage change in net revenue?"}
    score = Scorer(fmt, FinQAData().verifier)(f"<answer>{answer}</answer>", row)
    assert score.status == status


@pytest.mark.parametrize(("answer", "status"), [("5", "correct"), ("500", "wrong"), ("0.05", "wrong"),
                                                ("5.0", "correct")])
def test_finqa_reads_percent_or_fraction_only_for_a_percentage_question(answer, status):
    fmt = PromptTemplate(answer_tag="answer", fallback_last_number=False).answer_format
    row = {"answer": "5", "question": "how many stores did the company open in 2019?"}
    assert Scorer(fmt, FinQAData().verifier)(f"<answer>{answer}</answer>", row).status == status


def test_no_usable_row_names_the_file(tmp_path):
    write(tmp_path / "train.json", [record(1, "n/a"), record(2, "")])
    write(tmp_path / "test.json", [record(3, 1.0)])
    with pytest.raises(ConfigError) as e:
        FinQAData(path=str(tmp_path)).load(PromptTemplate())
    assert "train.json" in str(e.value) and "qa.exe_ans" in str(e.value)


def test_default_source_is_the_hub():
    data = build_group(compose(["data=finqa"]), "data")
    assert data.hub_id == "ibm/finqa" and data.path is None and data.rel_tol == 0.01
