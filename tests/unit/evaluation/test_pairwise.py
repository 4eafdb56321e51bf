"""PairwiseEvaluator: a reward model's accuracy and mean margin on held-out pairs; the generating evaluator refuses
a reward model with the option to use instead."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.evaluation import Evaluator, PairwiseEvaluator
from rlvr.model.reward_head import reward_model_from

PROMPT = [{"role": "user", "content": "1 + 2 ="}]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def test_accuracy_is_the_share_of_pairs_ranked_right_and_margin_their_mean(tiny, monkeypatch):
    policy, tok = tiny
    rows = [{"prompt": PROMPT, "chosen": c, "rejected": r} for c, r in (("3", "4"), ("3", "5"), ("3", "6"))]
    scores = {"3": 1.0, "4": 0.0, "5": 2.0, "6": -1.0}
    monkeypatch.setattr(PairwiseEvaluator, "score",
                        lambda self, model, tokenizer, convs: [scores[c[-1]["content"]] for c in convs])
    result = PairwiseEvaluator().evaluate(policy, tok, rows, scorer=None, name="final", step=3)
    assert (result.accuracy, result.n, result.step) == (2 / 3, 3, 3)
    assert result.extra["pairwise_margin"] == pytest.approx((1 - 1 + 2) / 3)
    assert [s["margin"] for s in result.samples] == [1.0, -1.0, 2.0]


def test_the_reward_head_keeps_the_policys_body_and_scores_one_number_per_sequence(tiny):
    import torch

    policy, tok = tiny
    rm = reward_model_from(policy, seed=0)
    body, theirs = rm.model.state_dict(), policy.model.state_dict()
    assert all(torch.equal(body[k], theirs[k]) for k in theirs) and rm.config.num_labels == 1
    scores = PairwiseEvaluator(batch_size=2).score(rm, tok, [PROMPT + [{"role": "assistant", "content": t}]
                                                             for t in ("3", "45", "678")])
    assert len(scores) == 3 and len(set(scores)) == 3


def test_held_out_samples_need_the_policy_and_the_generating_evaluator_refuses_a_reward_model(tiny):
    policy, tok = tiny
    rm = reward_model_from(policy)
    with pytest.raises(ConfigError, match="sampled from the policy at the baseline"):
        PairwiseEvaluator(pairs="samples").evaluate(rm, tok, [{"prompt": PROMPT, "answer": "3"}], None, "final")
    with pytest.raises(ConfigError, match="keep eval.baseline=true"):
        PairwiseEvaluator(pairs="samples", baseline=False)
    with pytest.raises(ConfigError, match=r"does not generate .*eval=best_of_n \(or eval=pairwise for a reward mod"):
        Evaluator().evaluate(rm, tok, [{"prompt": PROMPT, "answer": "3"}], None, "final")


def test_pairwise_evaluation_without_pairs_names_its_own_setting():
    """eval=pairwise on held-out rows without chosen/rejected columns: the message names eval.pairs, the setting that
    asked for the dataset's pairs (not train.preferences, which the user may not have set)."""
    with pytest.raises(ConfigError) as error:
        PairwiseEvaluator().held_out(None, None, [{"prompt": PROMPT, "answer": "3"}], None)
    assert str(error.value).startswith("eval.pairs=dataset needs chosen/rejected pairs: the rows have no chosen, "
                                       "rejected column") and "eval.pairs=samples" in str(error.value)
    assert "train.preferences" not in str(error.value)
