"""Best-of-N evaluation of a learned scorer beside majority vote, a random pick (its expected accuracy: pass@1)
and the oracle (pass@N), on scripted samples whose every count is known; the samples are drawn once (at the
baseline, or from eval.policy after a resume: the same ones) and reranked by a saved process reward model; any
sampled evaluation reranks by eval.rerank too."""

from __future__ import annotations

import pytest
from datasets import Dataset

from rlvr.data import PromptTemplate
from rlvr.errors import ConfigError
from rlvr.evaluation import BestOfNEvaluator, Evaluator
from rlvr.evaluation.metrics import best
from rlvr.rewards import ProcessReward
from rlvr.scoring import NumberVerifier, Scorer
from tests.conftest import build_group, compose

GOLD = {"q0": "7", "q1": "1", "q2": "5"}
SAMPLES = {  # 4 per question, and the scripted scorer's value of each
    "q0": (["7", "8", "8", "x"], [0.9, 0.2, 0.3, 0.1]),  # the scorer picks 7 (right); the vote says 8 (wrong)
    "q1": (["1", "1", "2", "3"], [0.1, 0.2, 0.8, 0.3]),  # the scorer picks 2 (wrong); the vote says 1 (right)
    "q2": (["5", "6", "5", "5"], [0.5, 0.5, 0.9, 0.2]),  # both right
}


def rows() -> Dataset:
    return Dataset.from_list([{"prompt": [{"role": "user", "content": q}], "question": q, "answer": a, "task": "t"}
                              for q, a in GOLD.items()])


def scorer() -> Scorer:
    return Scorer(PromptTemplate().answer_format, NumberVerifier())


def test_the_scorers_pick_beside_majority_vote_random_pick_and_oracle(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = [t for q in GOLD for t in SAMPLES[q][0]]
    values = [v for q in GOLD for v in SAMPLES[q][1]]
    ev = BestOfNEvaluator(n=4)
    reranked = ev.result(rows().to_list(), texts, values, scorer(), tok, "final", step=2)
    assert reranked.accuracy == pytest.approx(2 / 3)
    extra = reranked.extra
    assert extra["maj@4"] == pytest.approx(2 / 3)
    assert extra["pass@1"] == pytest.approx((1 / 4 + 2 / 4 + 3 / 4) / 3)  # a random pick's expected accuracy
    assert extra["pass@4"] == 1.0 and extra["n"] == 4
    assert [s["picked"] for s in reranked.samples] == ["7", "2", "5"]
    # of the (right, wrong) pairs, the share the scorer orders the other way: q0 0/3, q1 4/4, q2 1.5/3 (a tie: half)
    assert extra["verifier_disagreement"] == pytest.approx((0 + 1 + 0.5) / 3)
    random_pick = ev.result(rows().to_list(), texts, None, scorer(), tok, "baseline", step=None)
    assert random_pick.accuracy == pytest.approx(extra["pass@1"]) and "verifier_disagreement" not in random_pick.extra


def test_the_samples_are_drawn_once_and_again_alike_after_a_resume(tiny_model_dir, tiny_scorer_dirs):
    """The baseline samples from the policy it is handed; a PRM reranks those same samples; an evaluator that did
    not see the baseline (a resumed run) loads eval.policy and draws the same samples."""
    from transformers import AutoModelForTokenClassification

    model = build_group(compose([f"model.name_or_path={tiny_model_dir}", "model.dtype=float32"]), "model")
    policy, tok = model.load()
    prm = AutoModelForTokenClassification.from_pretrained(tiny_scorer_dirs[0])
    settings = {"n": 4, "max_new_tokens": 10, "batch_size": 8, "seed": 3}
    ev = BestOfNEvaluator(policy=model, **settings)
    baseline = ev.evaluate(policy, tok, rows(), scorer(), "baseline")
    drawn = list(ev._samples)
    final = ev.evaluate(prm, tok, rows(), scorer(), "final", step=1)
    assert ev._samples == drawn and len(drawn) == 12
    values = ProcessReward(str(tiny_scorer_dirs[0])).rate([r["prompt"] for r in rows() for _ in range(4)], drawn)
    picks = [drawn[4 * i + best(values[4 * i : 4 * i + 4])] for i in range(3)]
    assert [s["picked"] for s in final.samples] == picks
    assert final.extra["pass@1"] == baseline.accuracy  # the same samples: the random pick is the baseline
    resumed = BestOfNEvaluator(policy=model, **settings)
    resumed.evaluate(prm, tok, rows(), scorer(), "final", step=1)
    assert resumed._samples == drawn
    with pytest.raises(ConfigError, match="eval.policy"):
        BestOfNEvaluator(**settings).evaluate(prm, tok, rows(), scorer(), "final")


class Scripted:
    """A reranker: the scripted values of each question's samples, in order."""

    def rate(self, prompts, completions):
        questions = [p[-1]["content"] for p in prompts]
        assert [c for q in dict.fromkeys(questions) for c in SAMPLES[q][0]] == completions
        return [v for q in dict.fromkeys(questions) for v in SAMPLES[q][1]]


def test_a_sampled_evaluation_reranks_by_each_of_eval_rerank(monkeypatch):
    def fake_generate(self, model, tokenizer, prompts, num_samples=1, desc="eval"):
        texts = [[GOLD[p[-1]["content"]]] if num_samples == 1 else SAMPLES[p[-1]["content"]][0] for p in prompts]
        return [(t, len(t), False) for group in texts for t in group]

    monkeypatch.setattr(Evaluator, "generate", fake_generate)
    result = Evaluator(k=4, rerank={"scripted": Scripted()}).evaluate(None, None, rows(), scorer(), "final")
    assert result.extra["best_of_4/scripted"] == pytest.approx(2 / 3)
    assert result.extra["maj@4"] == pytest.approx(2 / 3) and result.extra["pass@4"] == 1.0


def test_eval_rerank_composes_and_needs_k_samples(tiny_scorer_dirs):
    prm_dir, rm_dir = tiny_scorer_dirs
    ev = build_group(compose(["eval=sampled", "eval/rerank=[prm,reward_model]", f"eval.rerank.prm.path={prm_dir}",
                              f"eval.rerank.reward_model.path={rm_dir}"]), "eval")
    assert isinstance(ev, Evaluator) and sorted(ev.rerank) == ["prm", "reward_model"] and ev.k == 8
    with pytest.raises(ConfigError, match=r"eval.rerank \(prm\) picks the best of k samples per question"):
        build_group(compose(["eval/rerank=prm", f"eval.rerank.prm.path={prm_dir}"]), "eval")
    with pytest.raises(ConfigError, match="'eval.rerank.prm.path' must be set"):
        build_group(compose(["eval=sampled", "eval/rerank=prm"]), "eval")
