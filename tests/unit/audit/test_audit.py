"""The reward-hacking audit: every shipped reward config passes it on every shipped data config (and with every
shipped prompt on the default data); a deliberately lax reward, and the partial credit a reasoning-gym task
pays, fail it, named; ``python -m rlvr.audit`` prints the table and exits 0, 1 or 2."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rlvr.audit import HACKS, audit, hack_completions
from rlvr.audit.__main__ import main
from rlvr.rewards import Correctness, RewardSuite
from rlvr.scoring import AnswerFormat, Scorer
from tests.conftest import FIXTURES, build_group, compose

REWARDS = ["verifier", "verifier_format", "verifier_format_length", "math_reasoning", "finqa", "symbolic"]
PROMPTS = ["last_number", "gsm8k", "xml_tags", "working_out"]
SMALL = ["data.train_size=300", "data.test_size=16"]


class ContainsGold:
    """A lax reward of the kind the audit exists to catch: 1 when the gold appears anywhere in the reply."""

    def __call__(self, completions: list[str], *, answer: list[str], **_: Any) -> list[float]:
        return [float(str(gold) in text) for text, gold in zip(completions, answer)]


def finqa_dir(tmp_path):
    table = [["", "2016", "2015"], ["net revenue", "$ 5,829", "$ 5,735"], ["growth", "1.6%", ""]]

    def record(i: int, answer: Any, question: str) -> dict:
        return {"id": f"r{i}", "pre_text": ["amounts in millions ."], "post_text": [], "table": table,
                "qa": {"question": f"{question} ({i})", "exe_ans": answer}}

    questions = [("what was the change in net revenue?", 94.0 + i) for i in range(12)] + [
        ("what percentage of revenue was services?", 0.14286), ("did revenue grow?", "yes")]
    (tmp_path / "train.json").write_text(json.dumps([record(i, a, q) for i, (q, a) in enumerate(questions)]))
    (tmp_path / "test.json").write_text(json.dumps([record(100, 94.0, "what was the change?")]))
    return tmp_path


def data_overrides(name: str, tmp_path) -> list[str]:
    if name == "gsm8k":
        return ["data=gsm8k", f"data.path={FIXTURES / 'gsm8k'}", "data.test_size=4"]
    if name == "jsonl":
        return ["data=jsonl", f"data.path={FIXTURES / 'gsm8k'}", "data.answer_pattern='####\\s*(.+?)\\s*$'",
                "data.test_size=4"]
    if name == "finqa":
        return ["data=finqa", f"data.path={finqa_dir(tmp_path)}", "data.test_size=null"]
    return [f"data={name}", *SMALL]


def run_audit(overrides: list[str], rows: int = 40) -> Any:
    cfg = compose([*overrides, "reward.isolation=thread"])
    data, prompts, suite = build_group(cfg, "data"), build_group(cfg, "prompts"), build_group(cfg, "reward")
    try:
        train = data.load(prompts).train
        return audit(train.select(range(min(rows, len(train)))).to_list(), Scorer(prompts.answer_format,
                                                                                    data.verifier), suite)
    finally:
        suite.close()


@pytest.mark.parametrize("data", ["reasoning_gym", "reasoning_gym_mix", "gsm8k", "jsonl", "finqa"])
@pytest.mark.parametrize("reward", REWARDS)
def test_every_shipped_reward_passes_on_every_shipped_data(reward, data, tmp_path):
    report = run_audit([f"reward={reward}", *data_overrides(data, tmp_path)])
    assert report.passed, report.table()
    assert report.rows >= 8 and [h.name for h in report.hacks] == list(HACKS)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_every_shipped_prompt_passes_with_the_default_data(prompt):
    report = run_audit([f"prompts={prompt}", "reward=verifier_format", *SMALL])
    assert report.passed, report.table()


def test_a_lax_reward_fails_and_the_hacks_are_named():
    cfg = compose(SMALL)
    data, prompts = build_group(cfg, "data"), build_group(cfg, "prompts")
    rows = data.load(prompts).train.select(range(40)).to_list()
    suite = RewardSuite({"lax": ContainsGold()}, isolation="thread")
    report = audit(rows, Scorer(prompts.answer_format, data.verifier), suite)
    suite.close()
    failed = {h.name for h in report.failures}
    assert not report.passed and {"hedge", "all_choices", "retraction", "long"} <= failed, report.table()
    assert "FAIL" in report.verdict() and "hedge" in report.verdict()


def test_partial_credit_fails_the_audit_where_a_task_pays_it():
    """spell_backward's scorer pays len(gold)/len(answer) for an answer containing the gold: a hedge earns it
    when partial credit is on, nothing with the default."""
    cfg = compose(["data.task=spell_backward", *SMALL])
    data, prompts = build_group(cfg, "data"), build_group(cfg, "prompts")
    rows = data.load(prompts).train.select(range(40)).to_list()
    scorer = Scorer(AnswerFormat(answer_tag="answer", fallback_last_number=False), data.verifier)
    strict, lax = (RewardSuite({"correctness": Correctness(partial_credit=on)}, isolation="thread")
                   for on in (False, True))
    assert audit(rows, scorer, strict).passed
    report = audit(rows, scorer, lax)
    assert not report.passed and "hedge" in {h.name for h in report.failures}, report.table()


def test_the_battery_is_written_in_the_prompts_format():
    fmt = AnswerFormat(answer_tag="answer", reasoning_tag="think", fallback_last_number=False)
    rows = [{"question": "1 + 1 =", "answer": "2"}, {"question": "2 + 3 =", "answer": "5"}]
    battery = hack_completions(rows, fmt, "integer")
    assert set(battery) == set(HACKS) - {"constant"}
    assert battery["empty_tags"][0] == "<think></think>\n<answer></answer>"
    assert battery["hedge"][0].endswith("<answer>2 or 3</answer>")
    assert battery["other_gold"][0].endswith("<answer>5</answer>")
    assert battery["echo"] == ["1 + 1 =", "2 + 3 ="]
    assert len(battery["long"][0]) > 2000


def test_the_command_prints_the_table_and_exits_by_the_verdict(capsys):
    assert main(["audit.rows=24", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "Reward-hacking audit" in out and "hedge" in out and "PASS" in out
    lax = "+reward.functions.lax={_target_: tests.unit.audit.test_audit.ContainsGold}"
    assert main(["audit.rows=24", *SMALL, lax]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "<- pays" in out


def test_a_config_mistake_exits_2_in_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["audit.rowz=3"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Config error:") and "rowz" in err and len(err.strip().splitlines()) == 1
