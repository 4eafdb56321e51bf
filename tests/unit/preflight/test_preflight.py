"""The whole preflight of a composed job (``preflight=true``), in process, on the tiny model: every check in the
table and in ``preflight.json``, jobs built to fail each check, the data-and-memory-only mode that loads no
weights, and the settings' own validation."""

from __future__ import annotations

import json

import pytest

from rlvr import preflight
from rlvr.errors import ConfigError
from rlvr.model import HFModel
from tests.conftest import REPO, compose, tiny_overrides

CHECKS = ["prompt_length", "gold_answers", "overlap", "answer_format", "reward_audit", "memory", "parse_rate",
          "format_rate", "truncation", "flat_groups", "rewards", "time", "cost"]
PRICES = f"preflight.prices={REPO / 'infrastructure' / 'aws' / 'prices.yaml'}"


def run(tiny_model_dir, tmp_path, *overrides: str):
    """The preflight of the shrunk default job (plus ``overrides``) in ``tmp_path/run``."""
    overrides = [*tiny_overrides(tiny_model_dir, tmp_path / "run"), "reward.isolation=thread", "preflight=true", PRICES,
                 *overrides]
    cfg, settings = preflight.split(compose(overrides))
    return preflight.run(cfg, settings, tmp_path / "run")


def written(tmp_path) -> dict:
    return json.loads((tmp_path / "run" / "preflight.json").read_text())


def test_a_random_model_on_arithmetic_fails_and_says_why(tiny_model_dir, tmp_path):
    """The tiny random model states no readable answer: every group is flat, the run could not learn."""
    report = run(tiny_model_dir, tmp_path, "preflight.sample=2")
    assert [c.name for c in report.checks] == CHECKS
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["parse_rate"] == statuses["flat_groups"] == "fail" and not report.passed
    assert all(statuses[n] == "pass" for n in ("prompt_length", "gold_answers", "overlap", "answer_format",
                                              "reward_audit", "memory", "time", "cost"))
    saved = written(tmp_path)
    assert saved["passed"] is False and saved["verdict"].startswith("FAIL: ")
    assert [c["name"] for c in saved["checks"]] == CHECKS
    flat = next(c for c in saved["checks"] if c["name"] == "flat_groups")
    assert flat["figures"]["groups"] == 2 and "no-answer" in flat["verdict"]
    time = next(c for c in saved["checks"] if c["name"] == "time")["figures"]
    assert time["total_s"] > 0 and time["steps"][0]["max_steps"] == 2 and time["evaluations"] == 2
    cost = next(c for c in saved["checks"] if c["name"] == "cost")["figures"]
    assert cost["instance"] == "g5.xlarge" and cost["usd"] > 0
    memory = next(c for c in saved["checks"] if c["name"] == "memory")["figures"]
    assert memory["measured_peak_gib"] > 0 and memory["trainable_parameters"] == memory["parameters"]
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"preflight.json"}  # it never trains or saves
    assert "GRPOLoop 2 steps x 4 completions (4 per prompt) x 8 tokens" in report.job
    table = report.table()
    assert "FAIL flat_groups: " in table and table.count("\n") > len(CHECKS)


def test_permissive_thresholds_pass(tiny_model_dir, tmp_path):
    report = run(tiny_model_dir, tmp_path, "preflight.sample=1", "preflight.min_parse_rate=0",
                 "preflight.max_flat_groups=1", "preflight.max_truncated_completions=1")
    assert report.passed and written(tmp_path)["passed"] is True, report.table()


def test_data_and_memory_only_loads_no_weights(tiny_model_dir, tmp_path, monkeypatch):
    def refuse(self):
        raise AssertionError("preflight.sample=0 loaded the model's weights")

    monkeypatch.setattr(HFModel, "load", refuse)
    report = run(tiny_model_dir, tmp_path, "preflight.sample=0")
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["behaviour"] == statuses["time"] == statuses["cost"] == "skip" and report.passed
    assert statuses["memory"] == "pass"


def test_a_batch_that_cannot_fit_fails_with_what_would_fit(tiny_model_dir, tmp_path):
    """512 sequences of about 430 tokens per micro-batch on a 1 GiB device (its CUDA context takes half)."""
    report = run(tiny_model_dir, tmp_path, "preflight.sample=0", "preflight.device_memory_gib=1",
                 "preflight.memory_margin=0", "train.per_device_train_batch_size=512", "train.num_generations=4",
                 "train.max_completion_length=256", "eval.max_new_tokens=8")
    memory = report.check("memory")
    assert memory.status == "fail" and not report.passed and memory.figures["peak_gib"] > 1
    assert "does not fit" in memory.summary and "try: model.gradient_checkpointing=true" in memory.verdict
    assert memory.figures["fits_with"] and all(v <= 1 for v in memory.figures["fits_with"].values())


def test_a_prompt_budget_too_small_fails(tiny_model_dir, tmp_path):
    """The tiny model's context is 512 tokens; a character tokenizer makes these prompts about 170 long."""
    report = run(tiny_model_dir, tmp_path, "preflight.sample=0", "train.max_completion_length=400",
                 "eval.max_new_tokens=8")
    check = report.check("prompt_length")
    assert check.status == "fail" and check.figures["train_over_share"] == 1.0 and check.figures["test_over"] == 0
    assert "budget of 112 tokens (the model's context 512 minus train.max_completion_length 400)" in check.verdict
    assert "they cannot fit" in check.verdict


def test_a_prompt_asking_for_the_wrong_format_fails(tiny_model_dir, tmp_path):
    report = run(tiny_model_dir, tmp_path, "preflight.sample=0", "prompts=xml_tags", "reward=verifier_format",
                 "prompts.system='Work it out, then write the answer on a last line after ####.'")
    check = report.check("answer_format")
    assert check.status == "fail" and "the prompt asks for '####'" in check.verdict


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_refused_gold_answers_and_held_out_questions_seen_in_training_fail(tiny_model_dir, tmp_path):
    train = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(12)]
    train += [{"question": f"How many legs has animal {i}?", "answer": "four or so"} for i in range(4)]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", [{"question": "what is 3  + 3?", "answer": "6"},  # a training question
                                          {"question": "What is 20 + 1?", "answer": "21"}])
    report = run(tiny_model_dir, tmp_path, "preflight.sample=0", "data=jsonl", f"data.path={tmp_path}",
                 "data.answer_type=integer", "data.train_size=null", "data.test_size=null")
    golds, overlap = report.check("gold_answers"), report.check("overlap")
    assert golds.status == "fail" and golds.figures["refused"] == 4 and "data.answer_type" in golds.verdict
    assert overlap.status == "fail" and overlap.figures["shared"] == 1


def test_settings_are_validated_and_need_preflight_true():
    with pytest.raises(ConfigError, match="Unknown key 'preflight.smaple' for rlvr.preflight.PreflightSettings. "
                                          "Did you mean 'sample'"):
        preflight.split(compose(["preflight=true", "preflight.smaple=0"]))
    with pytest.raises(ConfigError, match="'preflight.max_flat_groups' must be in"):
        preflight.split(compose(["preflight=true", "preflight.max_flat_groups=2"]))
    with pytest.raises(ConfigError, match="preflight.sample is a setting of the preflight, which runs only with "
                                          "preflight=true"):
        preflight.split(compose(["preflight.sample=0"]))
    cfg, settings = preflight.split(compose(["preflight=false"]))
    assert settings is None and "preflight" not in cfg
    cfg, settings = preflight.split(compose([]))
    assert settings is None and "preflight" not in cfg


def test_a_stream_is_checked_on_its_first_rows(tiny_model_dir, tmp_path):
    """``data.streaming=true``: the data checks read the held-out rows and the stream's first
    ``preflight.stream_rows`` training rows as the run makes them (refused ones counted, held-out ones dropped);
    the timed step reads the stream as the run does."""
    train = [{"question": "What is 3 + 3?", "answer": "6"},  # held out: dropped from the stream
             {"question": "What is 1 + 1?", "answer": "two"},  # refused at load
             {"question": "what is 2  + 2?", "answer": "4"}]  # the same as a held-out question, but for case and spaces
    train += [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(10, 40)]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", [{"question": "What is 3 + 3?", "answer": "6"},
                                          {"question": "What is 2 + 2?", "answer": "4"}])
    stream = ["data=jsonl", f"data.path={tmp_path}", "data.answer_type=integer", "data.streaming=true",
              "data.train_size=null", "data.test_size=2", "preflight.stream_rows=10"]
    report = run(tiny_model_dir, tmp_path, "preflight.sample=0", *stream)
    assert "QAData streamed" in report.job
    golds, overlap = report.check("gold_answers"), report.check("overlap")
    assert golds.figures["refused"] == 1 and golds.figures["rows"] == 1 + 10 + 2  # refused, read, held out
    assert overlap.status == "fail" and overlap.figures["shared"] == 1 and overlap.figures["dropped_at_load"] == 1
    for check in (report.check("prompt_length"), golds, overlap):
        assert "(streamed: the first 10 training rows read)" in check.summary
        assert check.figures["streamed_train_rows"] == 10
    report = run(tiny_model_dir, tmp_path, "preflight.sample=1", "preflight.max_overlap=1",
                 "preflight.max_refused_golds=1", "preflight.min_parse_rate=0", "preflight.max_flat_groups=1",
                 "preflight.max_truncated_completions=1", *stream)
    assert report.passed, report.table()
    time = report.check("time")
    assert time.status == "pass" and time.figures["steps"][0]["trained"] and time.figures["steps"][0]["rollout_s"] > 0


def test_rounds_and_the_trial_are_checked_as_they_would_run(tiny_model_dir, tmp_path, monkeypatch):
    """``experiment=smoke`` caps every loop (here ``max_completion_length`` 32 to 16, two rounds): the timed step
    samples at the capped length; each round is a stage (``round1``, ``round2``), its loop timed once."""
    from rlvr.preflight import timing

    timed = []
    real = timing.time_step

    def counted(*args, **kwargs):
        timed.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr("rlvr.preflight.time_step", counted)
    report = run(tiny_model_dir, tmp_path, "experiment=smoke", "train.rounds=3", "train.max_completion_length=32",
                 "preflight.sample=1")
    assert "GRPOLoop 2 steps x 4 completions (4 per prompt) x 16 tokens then GRPOLoop" in report.job
    truncation = report.check("truncation").figures
    assert truncation["max_completion_length"] == 16 and truncation["mean_tokens"] <= 16
    steps = report.check("time").figures["steps"]
    assert [s["stage"] for s in steps] == ["round1", "round2"] and timed == ["round1"]
    assert steps[0]["step_s"] == steps[1]["step_s"] > 0
    assert report.check("time").figures["evaluations"] == 3  # the baseline and one after each round
