"""Reward-model ensembles (train=reward_model train.ensemble_size=k): k heads on one body, each from its own seed
and its own bootstrap sample of the pairs; the heads' spread is logged while training, the saved model loads with
AutoModelForSequenceClassification (one logit per head), and as a reward it pays the mean minus a penalty times
the spread."""

from __future__ import annotations

import pytest

from rlvr.orchestration import build_pipeline
from rlvr.rewards import RewardModelScore
from rlvr.train.reward_model import bootstrap_counts, bootstrap_loss
from tests.conftest import compose
from tests.unit.train.test_preference_loops import dataset_overrides, overrides, preference_file


def test_each_head_draws_its_own_bootstrap_sample_of_the_pairs():
    counts = bootstrap_counts(200, 3, seed=5)
    columns = list(zip(*counts))
    assert len(counts) == 200 and all(sum(c) == 200 for c in columns)  # n draws with replacement per head
    assert len(set(columns)) == 3  # each head its own sample
    assert all(0.25 < c.count(0) / 200 < 0.5 for c in columns)  # about 1/e of the pairs left out of each
    assert bootstrap_counts(200, 3, seed=5) == counts and bootstrap_counts(200, 3, seed=6) != counts


def test_a_pair_left_out_of_a_heads_sample_teaches_that_head_nothing():
    import torch

    chosen, rejected = torch.randn(3, 2, requires_grad=True), torch.randn(3, 2)
    weights = torch.tensor([[1.0, 2.0], [0.0, 1.0], [2.0, 0.0]])  # pair 1 not drawn for head 0, pair 2 not for 1
    loss = bootstrap_loss(chosen, rejected, weights)
    nll = -torch.nn.functional.logsigmoid(chosen.detach() - rejected)
    head0 = (nll[0, 0] + 2 * nll[2, 0]) / 3
    head1 = (2 * nll[0, 1] + nll[1, 1]) / 3
    assert loss.item() == pytest.approx(((head0 + head1) / 2).item(), rel=1e-6)
    loss.backward()
    assert chosen.grad[1, 0] == 0 and chosen.grad[2, 1] == 0 and chosen.grad[0].abs().min() > 0


def test_an_ensemble_trains_logs_its_spread_and_pays_mean_minus_penalty_times_spread(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    run = tmp_path / "run"
    path = preference_file(tmp_path / "prefs.jsonl")
    cfg = compose([*overrides(tiny_model_dir, run, "reward_model", *dataset_overrides(path), "eval=pairwise",
                              "data.test_size=4", "train.learning_rate=1e-3", "train.ensemble_size=3",
                              "train.max_steps=3")])
    results = build_pipeline(cfg).run(run)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 3
    assert all(h["ensemble/std"] > 0 and 0 <= h["accuracy"] <= 1 for h in results["train_history"])
    assert results["final"]["n"] == 4 and "pairwise_margin" in results["final"]["extra"]  # the heads' mean

    model = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert model.config.num_labels == 3 and model.config.id2label == {i: f"member_{i}" for i in range(3)}
    prompts, texts = [[{"role": "user", "content": "4 + 1 ="}]] * 2, ["The answer is 5.", "The answer is 6."]
    heads = RewardModelScore(str(run / "model")).heads(prompts, texts)
    assert all(len(h) == 3 and len(set(h)) == 3 for h in heads)
    out = RewardModelScore(str(run / "model"), uncertainty_penalty=0.5)(texts, prompts=prompts)
    for value, h in zip(out.values, heads):
        mean = sum(h) / 3
        assert value == pytest.approx(mean - 0.5 * (sum((x - mean) ** 2 for x in h) / 3) ** 0.5, abs=1e-5)
    assert out.metrics["ensemble_std"] > 0
