"""pass@k and maj@k: the estimator against the unbiased formula, and the evaluator's aggregation over k
sampled completions, with generation stubbed so the counts are known."""

from __future__ import annotations

import json
from itertools import combinations
from math import comb

import pytest
from datasets import Dataset

from rlvr.config import load_config, with_defaults
from rlvr.data import PromptTemplate
from rlvr.errors import ConfigError
from rlvr.evaluation import Evaluator
from rlvr.evaluation.metrics import majority_answer, pass_at_k
from rlvr.scoring import NumberVerifier, Scorer
from tests.conftest import build_group


@pytest.mark.parametrize("n,c,k", [(10, 0, 1), (10, 3, 1), (10, 3, 5), (10, 8, 3), (5, 5, 5), (16, 1, 16), (20, 7, 4)])
def test_pass_at_k_is_the_unbiased_estimator(n, c, k):
    expected = 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected)
    # Same number by enumeration: the share of k-subsets of the n samples holding a correct one.
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(samples, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_edges():
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0  # n == k: any correct sample passes
    assert pass_at_k(8, 2, 1) == pytest.approx(0.25)  # pass@1 is the sample accuracy
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 2)


def test_majority_answer():
    assert majority_answer(["7", " 7", "8", None]) == "7"
    assert majority_answer(["8", "7", "7", "8"]) == "8"  # a tie goes to the earliest
    assert majority_answer([None, "  "]) is None


class Exact(NumberVerifier):
    def __call__(self, answer, row):
        return float(answer == row["answer"])


def test_evaluator_aggregates_pass_and_majority_over_k_samples(monkeypatch):
    rows = Dataset.from_list([
        {"prompt": [{"role": "user", "content": q}], "question": q, "answer": a, "task": t, "entry": "{}"}
        for q, a, t in [("q0", "7", "a"), ("q1", "1", "a"), ("q2", "5", "b")]
    ])
    greedy = {"q0": "7", "q1": "so 2", "q2": "no idea"}
    sampled = {
        "q0": ["7", "7", "8", "x"],  # 2/4 correct, majority 7 (right)
        "q1": ["1", "2", "2", "3"],  # 1/4 correct, majority 2 (wrong)
        "q2": ["x", "y", "z", "w"],  # nothing parsed
    }

    def fake_generate(self, model, tokenizer, prompts, num_samples=1, desc="eval"):
        texts = [[greedy[p[-1]["content"]]] if num_samples == 1 else sampled[p[-1]["content"]] for p in prompts]
        return [(t, len(t), False) for group in texts for t in group]

    monkeypatch.setattr(Evaluator, "generate", fake_generate)
    result = Evaluator(k=4).evaluate(None, None, rows, Scorer(PromptTemplate().answer_format, Exact()), "final", step=3)
    assert result.accuracy == pytest.approx(1 / 3)
    assert result.per_task == {"a": 0.5, "b": 0.0}
    assert result.parse_rate == pytest.approx(2 / 3)
    assert result.extra["pass@1"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert result.extra["pass@4"] == pytest.approx(2 / 3)
    assert result.extra["maj@4"] == pytest.approx(1 / 3)
    assert result.samples[0]["correct_of_4"] == 2
    summary = result.summary()
    assert json.loads(json.dumps(summary)) == summary  # results.json and metrics.jsonl stay plain JSON
    assert "samples" not in summary and summary["step"] == 3


def test_sampling_off_by_default_and_for_k_1(monkeypatch):
    calls = []

    def fake_generate(self, model, tokenizer, prompts, num_samples=1, desc="eval"):
        calls.append(num_samples)
        return [("1", 1, False)] * len(prompts) * num_samples

    monkeypatch.setattr(Evaluator, "generate", fake_generate)
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": "q"}], "answer": "1", "task": "t"}])
    scorer = Scorer(PromptTemplate().answer_format, Exact())
    for k in (0, 1):
        result = Evaluator(k=k).evaluate(None, None, rows, scorer, "baseline")
        assert not any(key.startswith(("pass@", "maj@")) for key in result.extra)
    assert calls == [1, 1]


def test_sampled_generation_is_seeded_and_leaves_the_training_rng_alone(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [[{"role": "user", "content": f"{i} + {i} ="}] for i in range(3)]
    ev = Evaluator(batch_size=6, max_new_tokens=6, k=3, temperature=1.0, seed=1)
    torch.manual_seed(123)
    first = ev.generate(model, tok, prompts, num_samples=3)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert ev.generate(model, tok, prompts, num_samples=3) == first
    assert torch.equal(torch.rand(3), after)  # evaluation during training does not shift the training RNG
    assert len(first) == 9
    assert len({t for t, _, _ in first}) > 1  # sampled, not greedy copies


def test_invalid_sampling_settings_name_the_key():
    with pytest.raises(ConfigError, match="eval.k"):
        Evaluator(k=-1)
    with pytest.raises(ConfigError, match="eval.temperature"):
        Evaluator(k=4, temperature=0.0)


def test_sampled_eval_option_composes_and_builds():
    cfg = with_defaults(load_config(["eval=sampled", "eval.k=4"]))
    ev = build_group(cfg, "eval")  # as the pipeline builds it: nested settings (eval.validator) as plain mappings
    assert (ev.k, ev.temperature, ev.max_new_tokens) == (4, 1.0, cfg.train.max_completion_length)


@pytest.mark.parametrize(
    ("text", "loops"),
    [("so 2 + 2 = 4", False), ("4 4 4 4 4", True), ("the answer is 4. the answer is 4. the answer is 4.", True),
     ("the answer is 4. the answer is 4.", False), ("", False)],
)
def test_a_completion_loops_when_a_three_word_sequence_comes_three_times(text, loops):
    from rlvr.evaluation.metrics import repeats

    assert repeats(text) is loops


def test_evaluation_reports_the_share_of_looping_completions():
    from datasets import Dataset

    from rlvr.evaluation import Evaluator

    texts = ["It is 4.", "4 4 4 4 4 4", "so 3 so 3 so 3 so 3", "3"]
    evaluator = Evaluator(progress=False)
    evaluator.generate = lambda model, tokenizer, prompts, **_: [(t, len(t.split()), False) for t in texts]
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": "q"}], "answer": "4", "task": "t"}] * 4)
    result = evaluator.evaluate(None, None, rows, Scorer(PromptTemplate().answer_format, NumberVerifier()), "x")
    assert result.repetition_rate == 0.5 and result.summary()["repetition_rate"] == 0.5
