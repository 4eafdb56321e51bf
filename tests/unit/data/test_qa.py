"""data=gsm8k and data=jsonl: rows from real GSM8K files (a few dozen rows committed under tests/fixtures) and
from custom files with their own field names; malformed rows skipped and counted; a file with no usable row
fails early naming file and field."""

from __future__ import annotations

import json
import logging

import pytest

from rlvr.data import PromptTemplate, QAData
from rlvr.errors import ConfigError
from rlvr.rewards import weighted_total
from rlvr.scoring import Scorer
from tests.conftest import FIXTURES, build_group, compose

GSM8K = FIXTURES / "gsm8k"  # 48 train and 24 test rows of the real files
PROMPT = PromptTemplate(system="Solve it.", user="Q: {question}")


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def gsm8k(**overrides):
    values = {k: "null" if v is None else v for k, v in overrides.items()}
    cfg = compose(["data=gsm8k", f"data.path={GSM8K}", *[f"data.{k}={v}" for k, v in values.items()]])
    return build_group(cfg, "data")


def test_gsm8k_rows_from_the_local_files():
    data = gsm8k(train_size=30, test_size=10)
    splits = data.load(PROMPT)
    assert (len(splits.train), len(splits.test)) == (30, 10)
    assert splits.stats["train_skipped"] == 0 and splits.stats["test_skipped"] == 0
    rows = {r["question"]: r for r in splits.test.to_list()}
    raw = {json.loads(line)["question"]: json.loads(line)["answer"] for line in (GSM8K / "test.jsonl").open()}
    for row in splits.train.to_list() + splits.test.to_list():
        assert row["task"] == "gsm8k"
        assert row["prompt"] == [{"role": "system", "content": "Solve it."},
                                 {"role": "user", "content": f"Q: {row['question']}"}]
        assert json.loads(row["entry"])["question"] == row["question"]
    for question, row in rows.items():  # the gold is the number after ####, canonicalised ("2,125" -> "2125")
        assert raw[question].rsplit("####", 1)[1].strip().replace(",", "") == row["answer"]


def test_gsm8k_gold_answers_are_canonical_numbers_and_score_correct():
    splits = gsm8k(train_size=None, test_size=None).load(PROMPT)  # every row, thousands separators included
    assert (len(splits.train), len(splits.test)) == (48, 24)
    rows = splits.train.to_list() + splits.test.to_list()
    assert {"1080", "109200000", "-7", "1450000", "-3"} <= {r["answer"] for r in rows}  # "1,080", "-7"... as written
    scorer = Scorer(PROMPT.answer_format, gsm8k().verifier)
    for row in rows:
        assert "," not in row["answer"] and row["answer"].lstrip("-").replace(".", "").isdigit()
        assert scorer(f"So the answer is {row['answer']}.", row).correct
        assert not scorer("So the answer is 123456789.", row).correct


def test_gsm8k_relative_path_as_users_type_it():
    cfg = compose(["data=gsm8k", "data.path=tests/fixtures/gsm8k", "data.train_size=5", "data.test_size=5"])
    splits = build_group(cfg, "data").load(PROMPT)
    assert (len(splits.train), len(splits.test)) == (5, 5)


def test_gsm8k_defaults_to_the_hub():
    data = build_group(compose(["data=gsm8k"]), "data")
    assert (data.hub_id, data.hub_config, data.path) == ("openai/gsm8k", "main", None)


@pytest.mark.parametrize("seed", [0, 1])
def test_sizes_and_seed_pick_reproducible_rows(seed):
    a = gsm8k(train_size=10, test_size=5, seed=seed).load(PROMPT)
    b = gsm8k(train_size=10, test_size=5, seed=seed).load(PROMPT)
    c = gsm8k(train_size=10, test_size=5, seed=seed + 10).load(PROMPT)
    assert a.train["question"] == b.train["question"] and a.test["question"] == b.test["question"]
    assert a.train["question"] != c.train["question"]


MALFORMED = [
    {"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"},
    {"question": "What is 2 + 2?", "answer": "#### 4"},
    {"answer": "#### 3"},  # missing question
    {"question": "q?", "answer": ""},  # empty answer
    {"question": "q?", "answer": "no marker 3"},  # answer_pattern does not match
    {"question": "q?", "answer": "#### three"},  # not a number
    "{broken json",
    "[1, 2]",  # not an object
]


def test_malformed_rows_are_skipped_counted_and_logged(tmp_path, caplog):
    write_jsonl(tmp_path / "train.jsonl", MALFORMED)
    write_jsonl(tmp_path / "test.jsonl", [{"question": "What is 5 + 5?", "answer": "#### 10"}])
    data = build_group(compose(["data=gsm8k", f"data.path={tmp_path}", "data.test_size=null"]), "data")
    with caplog.at_level(logging.WARNING, logger="rlvr.data.sources"):
        splits = data.load(PROMPT)
    assert splits.train["answer"] == ["2", "4"]
    assert splits.stats["train_skipped"] == 6 and splits.stats["test_skipped"] == 0
    assert splits.stats["skipped/answer: does not match answer_pattern"] == 1
    assert splits.stats["skipped/answer: empty"] == 1
    assert splits.stats["skipped/question: missing"] == 1
    assert splits.stats["skipped/answer: not a valid integer answer"] == 1  # gsm8k: integers
    assert splits.stats["skipped/<record>: not a JSON object"] == 2
    assert "skipped 6 of 8 rows" in caplog.text and "train.jsonl" in caplog.text


def test_no_usable_row_fails_early_naming_file_and_field(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"q": "What?", "answer": "#### 1"}] * 3)
    write_jsonl(tmp_path / "test.jsonl", [{"question": "What?", "answer": "#### 1"}])
    data = QAData(path=str(tmp_path), answer_pattern=r"####\s*(.+)")
    with pytest.raises(ConfigError) as e:
        data.load(PROMPT)
    assert "train.jsonl" in str(e.value) and "question: missing" in str(e.value)


def test_empty_file_fails_early(tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    write_jsonl(tmp_path / "test.jsonl", [{"question": "What?", "answer": "1"}])
    with pytest.raises(ConfigError, match="No usable row in .*train.jsonl.*the split is empty"):
        QAData(path=str(tmp_path)).load(PROMPT)


def test_custom_jsonl_with_its_own_field_names(tmp_path):
    records = [{"id": i, "input": {"text": f"What is {i} + {i}?"}, "target": f"${i + i:,}"}
               for i in range(0, 2000, 100)]
    path = write_jsonl(tmp_path / "mine.jsonl", records)
    cfg = compose(["data=jsonl", f"data.path={path}", "data.question_field=input.text",
                   "data.answer_field=target", "data.test_size=4", "data.seed=3"])
    data = build_group(cfg, "data")
    splits = data.load(PROMPT)
    assert (len(splits.train), len(splits.test)) == (16, 4)
    assert set(splits.train["question"]).isdisjoint(splits.test["question"])
    row = next(r for r in splits.train.to_list() + splits.test.to_list() if r["question"] == "What is 1900 + 1900?")
    assert row["answer"] == "3800" and row["task"] == "custom"
    scorer = Scorer(PROMPT.answer_format, data.verifier)
    assert scorer("it is $3,800", row).correct and not scorer("it is 380", row).correct


@pytest.mark.parametrize(
    ("answer_type", "gold", "good", "bad"),
    [
        ("string", "Paris", "The capital is:\nparis", "Lyon"),
        ("expression", "\\frac{1}{2}", "0.5", "0.25"),
        ("expression", "2\\sqrt{2}", "\\sqrt{8}", "2"),
        ("number", "-1,234.50", "-1234.5", "1234.5"),
        ("number", "5/8", "0.625", "5"),
        ("integer", "1,234", "$1,234", "1235"),
        ("choice", "(B)", "The answer is B. Paris", "C"),
        ("list", "[2, 3, 5]", "2, 3 and 5", "2, 5, 3"),
    ],
)
def test_answer_types(tmp_path, answer_type, gold, good, bad):
    write_jsonl(tmp_path / "train.jsonl", [{"question": f"q{i}", "answer": gold} for i in range(3)])
    write_jsonl(tmp_path / "test.jsonl", [{"question": "t", "answer": gold}])
    fmt_prompt = PromptTemplate(answer_tag="answer", fallback_last_number=False)
    data = QAData(path=str(tmp_path), answer_type=answer_type)
    row = data.load(fmt_prompt).test.to_list()[0]
    scorer = Scorer(fmt_prompt.answer_format, data.verifier)
    last_line = good.splitlines()[-1]
    assert scorer(f"<answer>{last_line}</answer>", row).status == "correct"
    assert scorer(f"<answer>{bad}</answer>", row).status == "wrong"


def test_math_gold_that_cannot_be_parsed_is_skipped(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "a", "answer": "1/2"}, {"question": "b", "answer": "???"}])
    write_jsonl(tmp_path / "test.jsonl", [{"question": "t", "answer": "1"}])
    splits = QAData(path=str(tmp_path), answer_type="expression").load(PROMPT)
    assert splits.train["answer"] == ["1/2"] and splits.stats["skipped/answer: not a valid expression answer"] == 1


@pytest.mark.parametrize(("answer_type", "bad_gold"), [("integer", "2.5"), ("integer", "7 or 8"), ("number", "x+2"),
                                                        ("expression", "the answer is 7"), ("choice", "F"),
                                                        ("list", "[]"), ("string", "  ")])
def test_a_gold_answer_that_does_not_read_as_its_type_is_refused_and_counted(tmp_path, answer_type, bad_gold):
    good = "A" if answer_type == "choice" else "1"
    write_jsonl(tmp_path / "train.jsonl", [{"question": "a", "answer": good}, {"question": "b", "answer": bad_gold}])
    write_jsonl(tmp_path / "test.jsonl", [{"question": "t", "answer": good}])
    splits = QAData(path=str(tmp_path), answer_type=answer_type, choices="ABC").load(PROMPT)
    assert splits.train["question"] == ["a"] and splits.stats["train_skipped"] == 1


def test_training_rows_that_are_also_held_out_are_dropped(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": f"q{i}", "answer": str(i)} for i in range(5)])
    write_jsonl(tmp_path / "test.jsonl", [{"question": "q1", "answer": "1"}, {"question": "q3", "answer": "3"}])
    splits = QAData(path=str(tmp_path)).load(PROMPT)
    assert splits.train["question"] == ["q0", "q2", "q4"] and splits.stats["train_dropped_overlap"] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"answer_pattern": "####(("}, "data.answer_pattern .* is not a valid regex"),
        ({"answer_pattern": "#### .+"}, "needs a group"),
        ({"train_size": 0}, "'data.train_size' must be >= 1, got 0."),
        ({"test_size": -1}, "'data.test_size' must be >= 1, got -1."),
    ],
)
def test_bad_settings_raise_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        QAData(path="x", **kwargs)


def test_bad_answer_type_is_caught_before_building():
    from rlvr.config import validate

    with pytest.raises(ConfigError, match="Valid choices: integer, number, expression, string, choice, list"):
        validate(compose(["data=jsonl", "data.path=x", "data.answer_type=regex"]))


def test_jsonl_requires_a_path(tmp_path):
    from rlvr.orchestration import build_pipeline

    with pytest.raises(ConfigError, match="'data.path' must be set"):
        build_pipeline(compose(["data=jsonl", f"output_dir={tmp_path}"]))


def test_gsm8k_comma_answers_are_canonical():
    splits = gsm8k(test_size=None, train_size=1).load(PROMPT)
    row = next(r for r in splits.test.to_list() if r["answer"] == "1450000")
    assert Scorer(PROMPT.answer_format, gsm8k().verifier)("It costs $1,450,000.", row).correct


def test_gsm8k_with_the_seeds_prompt_and_rewards_wires_up(tmp_path):
    """data=gsm8k prompts=working_out reward=math_reasoning: the pipeline's data and reward stages agree, and
    the ideal reply to each row earns the seeds' maximum (3 + 2 + 3 + 1.5) while a wrong one does not."""
    from rlvr.observers import Observers
    from rlvr.orchestration import RunContext, build_pipeline
    from rlvr.orchestration.results import Results, RunRecord

    cfg = compose(["data=gsm8k", f"data.path={GSM8K}", "data.train_size=4", "data.test_size=2",
                   "prompts=working_out", "reward=math_reasoning", "observers=none", f"output_dir={tmp_path}"])
    pipeline = build_pipeline(cfg)
    ctx = RunContext(tmp_path, 0, Observers([]), Results(RunRecord(None, [], str(tmp_path), None, 1, None, 1)))
    splits, _ = pipeline.load_data(ctx)
    scorer, _ = pipeline.build_scorer(ctx)
    rewards = pipeline.reward.trl_functions(scorer)
    rows = splits.train.to_list()
    assert "<SOLUTION>" in rows[0]["prompt"][0]["content"]
    good = [f"<start_working_out>work<end_working_out><SOLUTION>{r['answer']}</SOLUTION>" for r in rows]
    bad = [f"<start_working_out>work<end_working_out><SOLUTION>{r['answer']}1</SOLUTION>" for r in rows]
    columns = {k: [r[k] for r in rows] for k in ("answer", "task", "entry", "question")}
    for texts, total in ((good, 9.5), (bad, 4.0)):
        completions = [[{"role": "assistant", "content": t}] for t in texts]
        values = {name: f(prompts=[r["prompt"] for r in rows], completions=completions, **columns)
                  for name, f in rewards.functions.items()}
        assert weighted_total(values, rewards.weights).tolist() == [total] * len(rows)
