"""The adversarial validator's measures (rlvr.evaluation.validator) and the regression gate that watches them.

- ``ref_perplexity`` equals the perplexity computed token by token with the reference model, whatever the padding;
- the NLI measures, with a tiny sequence-classification model built here (never a hub download): labels found by
  name, batched equal to one by one, a model whose labels name no entailment refused;
- ``self_consistency`` from the k samples; every measure in the evaluation summary and in each saved sample;
- the gate refuses a stage on a validator measure or on self-consistency, and the pipeline refuses a gate that
  watches a measure ``eval`` does not take, before anything loads.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.evaluation import Evaluator, RegressionGate
from rlvr.evaluation.validator import Validation, Validator
from rlvr.orchestration import build_pipeline
from rlvr.scoring import AnswerFormat, Scorer
from rlvr.scoring.verifiers import NumberVerifier
from tests.conftest import char_tokenizer, compose, tiny_llama_config

PROMPTS = [[{"role": "user", "content": q}] for q in ("2 + 2 =", "What is seven times six?", "1 + 1 =")]
COMPLETIONS = ["4", "Seven times six is 42.", ""]


def build_nli(path: Path, labels: dict[int, str], zero_head: bool = False) -> Path:
    """A 2-layer Llama sequence classifier with the given labels (random weights; a zero head scores every pair
    alike, so the first label wins)."""
    from transformers import LlamaForSequenceClassification

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(tiny_llama_config(tokenizer, num_labels=len(labels), id2label=labels,
                                                             label2id={v: k for k, v in labels.items()}))
    if zero_head:
        torch.nn.init.zeros_(model.score.weight)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_reference_perplexity_is_the_token_by_token_perplexity(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    validator = Validator(Validation(reference=str(tiny_model_dir), reference_dtype="float32", batch_size=2))
    summary, per_sample = validator.measure(PROMPTS, COMPLETIONS)

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(
        tiny_model_dir)
    total, count = 0.0, 0
    for prompt, completion, sample in zip(PROMPTS, COMPLETIONS, per_sample):
        head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(head + completion, add_special_tokens=False, return_tensors="pt")["input_ids"]
        start = len(tokenizer(head, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0], dim=-1)
        nll = -sum(logp[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))
        n = ids.shape[1] - start
        total, count = total + nll, count + n
        assert sample["ref_perplexity"] == (pytest.approx(math.exp(nll / n), rel=1e-3) if n else None)
    assert summary["ref_perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    assert validator.measures() == {"ref_perplexity"}


def test_nli_reads_the_question_against_the_completion(tmp_path):
    path = build_nli(tmp_path / "nli", {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"})
    batched = Validator(Validation(nli=str(path), batch_size=3))
    summary, per_sample = batched.measure(PROMPTS, COMPLETIONS)
    one_by_one = [Validator(Validation(nli=str(path), batch_size=1)).entailment([p[-1]["content"]], [c])[0]
                  for p, c in zip(PROMPTS, COMPLETIONS)]
    assert [s["nli"] for s in per_sample] == [o["label"] for o in one_by_one]
    assert summary["nli_entailment"] == pytest.approx(sum(o["entailment"] for o in one_by_one) / 3, abs=1e-5)
    assert summary["nli_contradiction_rate"] == sum(o["label"] == "contradiction" for o in one_by_one) / 3
    assert batched.measures() == {"nli_contradiction_rate", "nli_entailment"}


def test_nli_labels_are_found_by_name(tmp_path):
    """A zero head scores every pair alike: the first label wins, whatever it is called."""
    first_contradiction = build_nli(tmp_path / "a", {0: "contradiction", 1: "entailment", 2: "neutral"}, True)
    summary, _ = Validator(Validation(nli=str(first_contradiction))).measure(PROMPTS, COMPLETIONS)
    assert summary == {"nli_contradiction_rate": 1.0, "nli_entailment": pytest.approx(1 / 3)}
    first_entailment = build_nli(tmp_path / "b", {0: "entailment", 1: "neutral", 2: "contradiction"}, True)
    summary, _ = Validator(Validation(nli=str(first_entailment))).measure(PROMPTS, COMPLETIONS)
    assert summary["nli_contradiction_rate"] == 0.0

    sentiment = build_nli(tmp_path / "c", {0: "negative", 1: "positive"})
    with pytest.raises(ConfigError, match=r"eval.validator.nli=.*do not name entailment and contradiction"):
        Validator(Validation(nli=str(sentiment))).measure(PROMPTS, COMPLETIONS)


def test_every_evaluation_carries_the_measures(tiny_model_dir, tmp_path):
    from datasets import Dataset

    nli = build_nli(tmp_path / "nli", {0: "entailment", 1: "neutral", 2: "contradiction"})
    evaluator = Evaluator(max_new_tokens=6, k=4, progress=False, validator={
        "reference": str(tiny_model_dir), "reference_dtype": "float32", "nli": str(nli)})
    assert {"ref_perplexity", "nli_contradiction_rate", "nli_entailment", "self_consistency"} <= evaluator.measures()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(
        tiny_model_dir)
    rows = Dataset.from_list([{"prompt": p, "answer": "4", "question": p[0]["content"]} for p in PROMPTS])
    result = evaluator.evaluate(model, tokenizer, rows, Scorer(AnswerFormat(), NumberVerifier()), "baseline")
    assert result.extra["ref_perplexity"] > 1 and 0 <= result.extra["nli_entailment"] <= 1
    assert 0 <= result.extra["self_consistency"] <= 1
    assert all({"ref_perplexity", "nli"} <= set(s) for s in result.samples)


def test_self_consistency_is_the_share_of_samples_agreeing_with_the_majority():
    evaluator = Evaluator(k=4, progress=False)
    sampled = {"2 + 2 =": ["4", "4", "5", "no idea"], "1 + 1 =": ["2", "3", "4", "5"]}
    evaluator.generate = lambda model, tokenizer, prompts, num_samples, desc: [
        (t, 1, False) for p in prompts for t in sampled[p[0]["content"]]]
    rows = [{"prompt": [{"role": "user", "content": q}], "answer": q[0]} for q in sampled]
    rows[0]["answer"] = "4"
    metrics = evaluator._sampled_metrics(None, None, rows, [r["prompt"] for r in rows],
                                         Scorer(AnswerFormat(), NumberVerifier()), [], "x")
    assert metrics["self_consistency"] == pytest.approx((2 / 4 + 1 / 4) / 2)  # ties: the first answer is the majority
    assert metrics["maj@4"] == pytest.approx(0.5)


def summary(name: str, accuracy: float = 0.5, **extra: float) -> dict:
    return {"name": name, "accuracy": accuracy, "repetition_rate": 0.0, "extra": extra}


def test_the_gate_watches_validator_measures_and_self_consistency():
    gate = RegressionGate(max_increase={"ref_perplexity": 2.0}, max_decrease={"self_consistency": 0.1})
    assert gate.enabled and gate.watched == {"accuracy", "ref_perplexity", "self_consistency"}
    before = summary("baseline", ref_perplexity=3.0, self_consistency=0.8)
    kept = gate.judge(before, summary("r1", ref_perplexity=4.5, self_consistency=0.75))
    assert kept["passed"] and kept["changes"] == {"ref_perplexity": 1.5, "self_consistency": -0.05}
    refused = gate.judge(before, summary("r1", ref_perplexity=5.5, self_consistency=0.6))
    assert not refused["passed"]
    assert refused["reason"] == ("ref_perplexity rose 3 -> 5.5 (by 2.5, more than pipeline.gate.max_increase."
                                 "ref_perplexity=2); self_consistency fell 0.8 -> 0.6 (by 0.2, more than "
                                 "pipeline.gate.max_decrease.self_consistency=0.1)")


def test_a_gate_on_a_measure_eval_does_not_take_fails_before_anything_loads(tmp_path):
    watch = ["pipeline.gate.max_increase.ref_perplexity=2", f"output_dir={tmp_path}"]
    with pytest.raises(ConfigError, match=r"pipeline.gate watches ref_perplexity, which eval \(Evaluator\) does not "
                                          r"measure: ref_perplexity needs eval.validator.reference"):
        build_pipeline(compose(watch))
    with pytest.raises(ConfigError, match="pipeline.gate watches self_consistency"):
        build_pipeline(compose(["pipeline.gate.max_decrease.self_consistency=0.1", f"output_dir={tmp_path}"]))
    pipeline = build_pipeline(compose([*watch, "eval=validated"]))
    assert pipeline.evaluator.validator.settings.reference == "embedded://smollm2-135m-instruct"
    assert not any(tmp_path.iterdir())
