"""The reward suite as TRL calls it: the seeds' reward config reproduces their values, plain TRL functions
work by _target_, and a reward that raises, hangs or returns garbage never stops training: its samples are
masked (or zeroed), logged and counted, and the score rates are logged every step."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rlvr.errors import ConfigError
from rlvr.rewards import RewardSuite
from rlvr.scoring import NumberVerifier, Scorer
from rlvr.scoring.formats import AnswerFormat
from tests.conftest import build_group, compose

SEEDS = AnswerFormat(answer_start="<SOLUTION>", answer_end="</SOLUTION>",
                     reasoning_start="<start_working_out>", reasoning_end="<end_working_out>",
                     fallback_last_number=False)
TAGS = AnswerFormat(answer_tag="answer", fallback_last_number=False)


# --- functions referenced by _target_ from the configs below --------------------------------------------------
def trl_style_reward(completions, **kwargs):
    """A plain TRL-style reward function on completion texts; it sees the prompts and columns too."""
    assert len(kwargs["prompts"]) == len(completions) and "answer" in kwargs and "scores" in kwargs
    return [1.0 if "42" in c else 0.0 for c in completions]


def trl_reward_with_params(completions, answer, bonus=1.0):
    """No **kwargs: only the arguments it names are passed."""
    return [bonus if c.strip() == a else 0.0 for c, a in zip(completions, answer)]


def conversational_reward(completions, prompts, **kwargs):
    """Written for TRL's conversational format."""
    return [float(c[0]["role"] == "assistant" and p[0]["role"] == "user") for c, p in zip(completions, prompts)]


def raises_on_bad(completions, **kwargs):
    if any("bad" in c for c in completions):
        raise RuntimeError("reward bug")
    return [1.0] * len(completions)


def hangs_on_slow(completions, **kwargs):
    if any("slow" in c for c in completions):
        time.sleep(3)
    return [1.0] * len(completions)


def exits(completions, **kwargs):
    raise SystemExit(3)


def wrong_length(completions, **kwargs):
    return [1.0]


def not_finite(completions, **kwargs):
    return [float("nan") if "nan" in c else (float("inf") if "inf" in c else 1.0) for c in completions]


def not_a_number(completions, **kwargs):
    return ["high" if "x" in c else 1.0 for c in completions]


class Metrics:
    """Stands in for TRL's ``log_metric``."""

    def __init__(self):
        self.values: dict[str, float] = {}

    def __call__(self, key, value):
        self.values[key] = value


def call_like_trl(suite, scorer, texts, **columns):
    """Call every adapted function exactly as GRPOTrainer does, with conversational completions."""
    rewards = suite.trl_functions(scorer)
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    prompts = [[{"role": "user", "content": "q"}]] * len(texts)
    metrics = Metrics()
    out = {name: f(prompts=prompts, completions=completions, completion_ids=[[1]] * len(texts),
                   trainer_state=None, log_metric=metrics, log_extra=lambda **_: None, **columns)
           for name, f in rewards.functions.items()}
    assert [f.__name__ for f in rewards.functions.values()] == list(rewards.functions)  # TRL logs by __name__
    return out, rewards.weights, metrics.values


def suite_of(functions, **kwargs):
    """A RewardSuite from a `reward` config node, validated and built the way the pipeline does it."""
    from omegaconf import OmegaConf

    from rlvr.config import build, validate

    node = OmegaConf.create({"_target_": "rlvr.rewards.RewardSuite", "functions": functions, **kwargs})
    validate(node, "reward")
    suite = build(node)
    assert isinstance(suite, RewardSuite)
    return suite


def fn(name, **params):
    """The config node of a plain function defined in this module."""
    return {"_target_": f"{__name__}.{name}", "_partial_": True, **params}


# --- the seeds' rewards ---------------------------------------------------------------------------------------
def w(body, answer):
    body = body or "12 * 6 = 72"
    return f"<start_working_out>{body}<end_working_out><SOLUTION>{answer}</SOLUTION>"


SEED_CASES = [
    # completion, gold, {function: reward}: format_exact, format_approx, answer, numbers
    (w("6*12", "72"), "72", (3.0, 2.0, 3.0, 1.5)),
    (w("6*12", " 72 "), "72", (3.0, 2.0, 1.5, 1.5)),
    (w("", "70"), "72", (3.0, 2.0, 0.5, 0.0)),
    (w("", "60"), "72", (3.0, 2.0, 0.25, 0.0)),
    (w("", "7"), "72", (3.0, 2.0, -1.0, 0.0)),
    (w("", "$80,000"), "80000", (3.0, 2.0, 1.5, 1.5)),
    (w("", "-5"), "-5", (3.0, 2.0, 3.0, 1.5)),
    ("72", "72", (0.0, -2.0, -1.0, 0.0)),
    (w("", "72") + "<SOLUTION>73</SOLUTION>", "72", (0.0, 0.0, -1.0, 0.0)),
    ("<start_working_out>it is 72<end_working_out>", "72", (0.0, 0.0, -1.0, 0.0)),
    (w("", "72") + " or 73", "72", (0.0, 2.0, 3.0, 1.5)),
    (w("", "72"), "n/a", (3.0, 2.0, None, None)),
]


def test_math_reasoning_config_reproduces_the_seeds_values():
    cfg = compose(["reward=math_reasoning", "prompts=working_out"])
    suite = build_group(cfg, "reward")
    prompt = build_group(cfg, "prompts")
    assert prompt.answer_format == SEEDS
    texts, golds = [c[0] for c in SEED_CASES], [c[1] for c in SEED_CASES]
    out, weights, metrics = call_like_trl(suite, Scorer(prompt.answer_format, NumberVerifier()), texts, answer=golds)
    assert weights == {"format_exact": 1.0, "format_approx": 1.0, "answer": 1.0, "numbers": 1.0}
    for i, (_, _, expected) in enumerate(SEED_CASES):
        got = tuple(out[name][i] for name in ("format_exact", "format_approx", "answer", "numbers"))
        assert got == expected, texts[i]
    assert metrics["score/bad_gold_rate"] == pytest.approx(1 / len(SEED_CASES))
    assert metrics["score/unparseable_rate"] == pytest.approx(3 / len(SEED_CASES))
    assert metrics["score/wrong_rate"] == pytest.approx(3 / len(SEED_CASES))
    assert metrics["score/accuracy"] == pytest.approx(5 / len(SEED_CASES))


def test_finqa_reward_config_values():
    from rlvr.scoring import FinQAVerifier

    suite = build_group(compose(["reward=finqa"]), "reward")
    assert "numbers" not in suite.functions  # switched off by `numbers: null`
    texts = [w("", "14.3%"), w("", "14.28"), w("", "$(1,234)"), w("", "12"), w("", "")]
    golds = ["0.14286", "0.14286", "-1234", "0.14286", "0.14286"]
    questions = ["what percentage of revenue came from services?"] * len(texts)  # percent readings allowed here
    out, _, _ = call_like_trl(suite, Scorer(SEEDS, FinQAVerifier()), texts, answer=golds, question=questions)
    assert out["answer"] == [3.0, 1.0, 3.0, -1.0, -1.0]


# --- plain TRL functions by _target_ --------------------------------------------------------------------------
def test_plain_trl_function_by_target():
    suite = suite_of({"mine": fn("trl_style_reward")}, weights={"mine": 0.5})
    out, weights, _ = call_like_trl(suite, Scorer(TAGS, NumberVerifier()), ["42", "41"], answer=["42", "42"])
    assert out == {"mine": [1.0, 0.0]} and weights == {"mine": 0.5}


def test_plain_function_without_partial_is_refused():
    with pytest.raises(ConfigError, match="add `_partial_: true`"):
        suite_of({"mine": {"_target_": f"{__name__}.trl_style_reward"}})


def test_plain_function_gets_its_params_and_only_the_arguments_it_names():
    suite = suite_of({"exact": fn("trl_reward_with_params", bonus=2.0)})
    out, _, _ = call_like_trl(suite, Scorer(TAGS, NumberVerifier()), ["42", "41"], answer=["42", "42"])
    assert out["exact"] == [2.0, 0.0]


def test_plain_function_with_unknown_param_fails_at_construction():
    with pytest.raises(ConfigError, match="reward.functions.exact.bonsu"):
        suite_of({"exact": fn("trl_reward_with_params", bonsu=2.0)})


def test_conversational_functions_get_the_completions_as_trl_has_them():
    suite = suite_of({"think": {"_target_": "trl.rewards.think_format_reward", "_partial_": True},
                      "roles": fn("conversational_reward"), "texts": fn("trl_style_reward")},
                     conversational=["think", "roles"])
    texts = ["<think>\nhm\n</think>\n42", "41"]
    out, _, _ = call_like_trl(suite, Scorer(TAGS, NumberVerifier()), texts, answer=["42", "42"])
    assert out == {"think": [1.0, 0.0], "roles": [1.0, 1.0], "texts": [1.0, 0.0]}


# --- failures never stop training ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "texts", "on_error", "expected", "failures"),
    [
        ("raises_on_bad", ["ok", "bad", "ok"], "mask", [1.0, None, 1.0], 1),
        ("raises_on_bad", ["ok", "bad", "ok"], "zero", [1.0, 0.0, 1.0], 1),
        ("exits", ["a", "b"], "mask", [None, None], 2),  # even SystemExit
        ("wrong_length", ["a", "b"], "mask", [1.0, 1.0], 0),  # retried one by one: each returns one value
        ("not_finite", ["ok", "nan", "inf"], "mask", [1.0, None, None], 2),
        ("not_a_number", ["ok", "x"], "zero", [1.0, 0.0], 1),
    ],
)
def test_failing_reward_is_isolated_counted_and_logged(target, texts, on_error, expected, failures, caplog):
    suite = suite_of({"r": fn(target), "c": {"_target_": "rlvr.rewards.Correctness"}},
                     on_error=on_error)
    with caplog.at_level(logging.WARNING, logger="rlvr.rewards.suite"):
        out, _, metrics = call_like_trl(suite, Scorer(TAGS, NumberVerifier()), texts, answer=["1"] * len(texts))
    assert out["r"] == expected
    assert out["c"] == [0.0] * len(texts)  # the other reward is untouched
    assert suite.failures["r"] == failures
    assert metrics["reward_failures/r"] == failures
    assert metrics["reward_failures/c"] == 0
    if failures:
        assert "reward 'r'" in caplog.text


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_slow_reward_times_out_only_for_the_slow_sample(isolation):
    suite = suite_of({"r": fn("hangs_on_slow")}, timeout_s=0.5, isolation=isolation)
    scorer = Scorer(TAGS, NumberVerifier())
    call_like_trl(suite, scorer, ["a"], answer=["1"])  # the worker processes start on the first call
    start = time.monotonic()
    out, _, metrics = call_like_trl(suite, scorer, ["a", "slow", "b"], answer=["1"] * 3)
    # one timeout for the batch, one for the samples, not one per sample (worker processes also restart twice,
    # which takes a second or more on a busy machine)
    assert time.monotonic() - start < (2.5 if isolation == "thread" else 30)
    assert out["r"] == [1.0, None, 1.0]
    assert suite.timeouts["r"] == 1 and suite.failures["r"] == 1
    assert metrics["reward_failures/r"] == 1
    suite.close()


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_hung_calls_do_not_block_later_calls(isolation):
    """Killed workers, or abandoned threads, must not starve later calls: a healthy batch after several hangs is
    still scored."""
    suite = suite_of({"r": fn("hangs_on_slow")}, timeout_s=0.3, isolation=isolation)
    scorer = Scorer(TAGS, NumberVerifier())
    for _ in range(3):
        call_like_trl(suite, scorer, ["slow"] * 4, answer=["1"] * 4)
    out, _, _ = call_like_trl(suite, scorer, ["a", "b"], answer=["1"] * 2)
    assert out["r"] == [1.0, 1.0]
    assert suite.timeouts["r"] == 12
    reward_threads = [t for t in threading.enumerate() if t.name == "reward"]
    assert all(t.daemon for t in reward_threads) and (isolation == "thread" or not reward_threads)
    suite.close()


def test_scores_are_computed_once_per_batch():
    calls = []

    class Counting(NumberVerifier):
        def __call__(self, answer, row):
            calls.append(answer)
            return super().__call__(answer, row)

    suite = suite_of({"a": {"_target_": "rlvr.rewards.Correctness"}, "b": {"_target_": "rlvr.rewards.NumberCheck"}})
    call_like_trl(suite, Scorer(TAGS, Counting()), ["<answer>1</answer>", "<answer>2</answer>"], answer=["1", "1"])
    assert calls == ["1", "2"]


def test_the_score_cache_is_keyed_on_the_batch_not_on_the_list_that_holds_it():
    """TRL hands every function of a step the same completions list; another caller (PPO, a test) may build a new
    list for each function. Either way a batch is scored once; the same texts for other rows are scored anew."""
    calls = []

    class Counting(NumberVerifier):
        def __call__(self, answer, row):
            calls.append((answer, row["answer"]))
            return super().__call__(answer, row)

    suite = suite_of({"a": {"_target_": "rlvr.rewards.Correctness"}, "b": {"_target_": "rlvr.rewards.NumberCheck"}})
    rewards = suite.trl_functions(Scorer(TAGS, Counting()))
    texts = ["<answer>1</answer>", "<answer>2</answer>"]
    for f in rewards.functions.values():
        f(prompts=["q", "q"], completions=list(texts), answer=["1", "1"])
    assert calls == [("1", "1"), ("2", "1")]
    assert rewards.functions["a"](prompts=["q", "q"], completions=list(texts), answer=["2", "2"]) == [0.0, 1.0]
    assert calls[2:] == [("1", "2"), ("2", "2")]
    suite.close()


@pytest.mark.parametrize(
    ("functions", "kwargs", "message"),
    [
        ({}, {}, "reward.functions is empty"),
        ({"a": None}, {}, r"is empty \(or all null\)"),
        ({"a": {"weight": 1.0}}, {}, "reward.functions.a needs a _target_"),
        ({"a": {"_target_": "rlvr.rewards.Correctness"}}, {"weights": {"a": "heavy"}},
         "'reward.weights.a' must be a number"),
        ({"a": {"_target_": "rlvr.rewards.Correctness"}}, {"weights": {"b": 1.0}}, "reward.weights names b"),
        ({"a": {"_target_": "rlvr.rewards.Correctness"}}, {"conversational": ["b"]}, "reward.conversational names b"),
        ({"a": {"_target_": "rlvr.rewards.Correctness", "corect": 1.0}}, {}, "Did you mean 'correct'"),
        ({"a": {"_target_": "rlvr.rewards.LengthShaping", "unit": "tokens"}}, {}, "Valid choices: chars, words"),
        ({"a": {"_target_": "rlvr.rewards.Nope"}}, {}, "cannot be imported"),
        ({"a": {"_target_": "rlvr.rewards.Correctness"}}, {"timeout_s": 0}, "reward.timeout_s"),
    ],
)
def test_bad_reward_configs_fail_early(functions, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        suite_of(functions, **kwargs)


def test_null_function_is_switched_off_from_the_command_line():
    suite = build_group(compose(["reward=math_reasoning", "reward.functions.numbers=null"]), "reward")
    assert list(suite.functions) == ["format_exact", "format_approx", "answer"]
